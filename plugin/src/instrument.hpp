// The instrument without a plugin API: 11 pads, a render worker and the voices the audio thread plays.
//
// Threads. The audio thread (process, noteOn, allNotesOff) only plays finished samples: it never calls the model,
// allocates, locks or touches a file. Anything may change a pad's settings (setPad): that bumps the pad's
// generation and wakes the worker with a semaphore post. The worker renders the pad (model → sampler → the host's
// rate) and publishes the new Sample through an atomic pointer; the audio thread takes it at the start of a block
// and hands the sample it replaces back through a lock-free ring once no voice plays it; the worker frees it.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <semaphore.h>

#include "model.hpp"
#include "sampler.hpp"

namespace nd {

constexpr int kPads = 11;

struct PadSpec {
    VoiceSpec voice;
    SamplerSpec sampler;
    int note = 36;
    std::string name = "kick";
    double humanise = 0;  // the neural round robin: 0 plays one sound; above, successive hits cycle through takes
};

// Humanise: take 0 is the pad's sound; take k (1 ≤ k < kTakes) decodes z + kHumaniseScale · humanise · ε_k,
// ε_k = numpy's default_rng(k).standard_normal(latent_dim), through the same sampler.
constexpr int kTakes = 4;
constexpr double kHumaniseScale = 0.5;

struct Sample {
    std::vector<std::vector<float>> takes;  // at the host's rate; [0] the pad's sound, then its humanised takes
    uint64_t generation = 0;
};

class Instrument {
public:
    // folder: the export folder (export.json, generator.onnx). render: start the worker, which renders every pad
    // (waitRendered waits for them); else nothing is rendered: a host's probe that only reads the parameters.
    Instrument(const std::string& folder, double hostRate, bool render = true);
    ~Instrument();

    Model& model() { return *model_; }

    // ---- any thread but the audio thread
    PadSpec pad(int i) const;
    void setPad(int i, const PadSpec& spec);           // re-rendered by the worker
    void setPads(const std::array<PadSpec, kPads>& p, bool wait);  // all at once; wait: until they are rendered
    void setHostRate(double rate, bool wait);
    std::array<PadSpec, kPads> pads() const;
    // "load sample…": encode a sound file with the analyzer graph and start pad i from it (its class: cls, or the
    // model's listener's choice when -1). Throws std::runtime_error naming the file; the pad is then unchanged.
    void loadSample(int i, const std::string& path, int cls = -1);          // re-renders every pad at this rate
    bool waitRendered(double seconds);                 // true once every pad's newest settings are rendered
    std::vector<float> padSample(int i, int take = 0); // a copy of a pad's newest rendered take (tests, bench)

    // ---- any thread, the audio thread included (lock-free): a DAW's automation; the worker merges it
    void setParam(int pad, int k, float value);
    float param(int pad, int k) const { return params_[pad][k].load(std::memory_order_relaxed); }

    // ---- the audio thread
    void noteOn(int note, int velocity, uint32_t frame);  // frame: offset within the next process() block
    void process(float* left, float* right, uint32_t frames);  // renders, then forgets this block's notes
    void allNotesOff();                                // activate/reset: no tail of a previous render

private:
    struct Voice {
        const Sample* sample = nullptr;
        const std::vector<float>* take = nullptr;
        size_t pos = 0;
        float gain = 0;
        int pad = -1;
        int fade = 0;
    };
    struct Event { uint32_t frame; int pad; float gain; };
    struct Pad {
        std::atomic<Sample*> incoming{nullptr};
        std::atomic<uint64_t> wanted{0};    // generation of the newest settings
        std::atomic<uint64_t> rendered{0};  // generation of the newest published sample (its take 0 at least)
        std::atomic<uint64_t> finished{0};  // generation whose takes are all published
        uint32_t hits = 0;                  // audio thread only: the round robin's position
        std::atomic<int> note{-1};          // what the audio thread needs of the settings
        std::atomic<int> hat{0};            // 1: a closed hat (chokes), 2: an open hat (is choked)
        const Sample* current = nullptr;    // audio thread only
        std::array<const Sample*, 8> old{}; // replaced samples some voice may still play (audio thread only)
    };

    void worker();
    void renderPad(int i);
    void takeIncoming();
    void retire(const Sample* s);
    void renderVoices(float* l, float* r, uint32_t from, uint32_t to);
    void startVoice(int pad, float gain);
    void publishSettings();

    std::shared_ptr<Model> model_;
    bool live_ = true;
    mutable std::mutex specLock_;          // the pads' settings; never taken by the audio thread
    std::array<PadSpec, kPads> specs_;
    static constexpr int kMaxParams = 16;
    std::array<std::array<std::atomic<float>, kMaxParams>, kPads> params_{};
    std::array<std::array<float, kMaxParams>, kPads> merged_{};  // the values in specs_ (under specLock_)
    void syncParams();  // params_ and merged_ from specs_ (under specLock_)
    std::atomic<double> hostRate_;
    std::array<Pad, kPads> pads_;
    std::array<Voice, 64> voices_{};
    std::array<Event, 512> events_{};
    uint32_t nEvents_ = 0;
    // samples the audio thread gives back, freed by the worker (single producer, single consumer)
    std::array<std::atomic<const Sample*>, 256> ring_{};
    std::atomic<uint32_t> ringHead_{0}, ringTail_{0};
    sem_t wake_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex sampleCopyLock_;
    std::array<std::shared_ptr<const Sample>, kPads> lastRendered_{};
    void publish(int i, std::vector<std::vector<float>> takes, uint64_t gen);
};

std::array<PadSpec, kPads> defaultPads(const Model& m);

}  // namespace nd
