// The model, without Python: export.json (classes, rate, PCA axes, class prior) and the ONNX generator graph run
// by OpenVINO. Voice → z mirrors neuraldrum.engine.Engine.voice_z, so a pad sounds as `neuraldrum generate` does.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace nd {

// What decides a pad's sound before the sampler (a kit slot's voice without its sampler controls).
struct VoiceSpec {
    int cls = 0;
    std::optional<uint64_t> seed;        // a prior draw (numpy's default_rng(seed)), else the class centre
    std::optional<double> temperature;   // None: the model's prior_temperature
    std::vector<float> z;                // an explicit start (an encoded sample's); empty: none
    bool hasControls = false;
    double x = 0, y = 0, fine = 0, range = 2;
    int axisI = -1, axisJ = -1;          // two latent dimensions for x and y instead of the PCA axes
    double amount = 0;                   // variation: amount * default_rng(variationSeed).standard_normal(D)
    uint64_t variationSeed = 0;
};

class Model {
public:
    // Loads folder/export.json and folder/generator.onnx; throws std::runtime_error naming the file and field.
    explicit Model(const std::string& folder);
    ~Model();

    const std::vector<std::string>& classes() const { return classes_; }
    int classIndex(const std::string& name) const;  // -1 when unknown
    int sampleRate() const { return sampleRate_; }
    int nSamples() const { return nSamples_; }
    int latentDim() const { return latentDim_; }
    double priorTemperature() const { return temperature_; }
    const std::string& sha256() const { return sha256_; }

    std::vector<float> voiceZ(const VoiceSpec& v) const;  // (latent_dim,)
    // One finished wave, (n_samples,) at sampleRate(), peak -1 dBFS. Thread-safe (calls run one at a time); the
    // graph is compiled on the first call, so an instance that never plays (a host's probe) costs no compile.
    std::vector<float> generate(int cls, const std::vector<float>& z);

    // A prepared clip (n_samples,) → its latent and the class used (cls, or the listener's choice when -1), by the
    // analyzer graph. Thread-safe as generate.
    std::vector<float> encode(const std::vector<float>& clip, int cls, int* clsUsed);
    double fadeMs() const { return fadeMs_; }
    const std::string& fadeShape() const { return fadeShape_; }
    bool hasClassifier() const { return hasClassifier_; }

    // One Model per folder in the process, shared by the plugin's instances (a host may make several).
    static std::shared_ptr<Model> shared(const std::string& folder);

private:
    struct Pca { std::vector<float> mean, axes, scales; int k = 0; };
    const Pca* pca(int cls) const;
    void compile();

    std::vector<std::string> classes_;
    int sampleRate_ = 0, nSamples_ = 0, latentDim_ = 0;
    double temperature_ = 1.0, fadeMs_ = 10.0;
    std::string fadeShape_ = "cosine";
    bool hasClassifier_ = false;
    std::string sha256_;
    std::vector<Pca> pcaByClass_;  // per class; k == 0 where the export has none
    Pca pcaAll_;
    std::vector<float> priorMean_, priorChol_;  // (C, D), (C, D, D); empty without a class prior
    struct Runtime;
    std::unique_ptr<Runtime> rt_;
    std::string folder_;
    std::mutex runLock_;
};

}  // namespace nd
