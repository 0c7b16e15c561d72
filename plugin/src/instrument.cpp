#include "instrument.hpp"
#include "npyrandom.hpp"
#include "params.hpp"
#include "sound.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <stdexcept>

namespace nd {
namespace {

// the kit's General MIDI note per class (neuraldrum.kit.DEFAULT_NOTES)
int gmNote(const std::string& cls) {
    static const std::pair<const char*, int> notes[] = {
        {"kick", 36}, {"rim", 37}, {"snare", 38}, {"clap", 39}, {"hh_closed", 42}, {"tom", 45},
        {"hh_open", 46}, {"crash", 49}, {"ride", 51}, {"cowbell", 56}, {"shaker", 70}};
    for (const auto& n : notes)
        if (cls == n.first) return n.second;
    return -1;
}

constexpr double kChokeSeconds = 0.002;  // a choked open hat fades out this fast rather than clicking

}  // namespace

std::array<PadSpec, kPads> defaultPads(const Model& m) {
    std::array<PadSpec, kPads> pads;
    const auto& classes = m.classes();
    for (int i = 0; i < kPads; ++i) {
        const int c = i % int(classes.size());
        pads[i].voice.cls = c;
        pads[i].voice.hasControls = true;
        pads[i].voice.variationSeed = uint64_t(i);
        pads[i].name = classes[c];
        const int note = gmNote(classes[c]);
        pads[i].note = note >= 0 ? note : 60 + i;
    }
    return pads;
}

Instrument::Instrument(const std::string& folder, double hostRate, bool render)
    : model_(Model::shared(folder)), live_(render), hostRate_(hostRate) {
    sem_init(&wake_, 0, 0);
    specs_ = defaultPads(*model_);
    syncParams();
    publishSettings();
    if (!live_) return;
    for (auto& p : pads_) p.wanted = 1;  // the worker renders them now: a host restoring a kit next waits once
    thread_ = std::thread(&Instrument::worker, this);
    sem_post(&wake_);
}

Instrument::~Instrument() {
    stop_ = true;
    sem_post(&wake_);
    if (thread_.joinable()) thread_.join();
    for (auto& p : pads_) {
        delete p.incoming.exchange(nullptr);
        for (const Sample* s : p.old) delete s;
        delete p.current;
    }
    while (ringTail_ != ringHead_) delete ring_[ringTail_++ % ring_.size()].load();
    sem_destroy(&wake_);
}

std::array<PadSpec, kPads> Instrument::pads() const {
    std::lock_guard<std::mutex> g(specLock_);
    return specs_;
}

void Instrument::syncParams() {
    for (int i = 0; i < kPads; ++i)
        for (int k = 0; k < kPadParams; ++k) {
            merged_[i][k] = paramFromSpec(specs_[i], k);
            params_[i][k].store(merged_[i][k]);
        }
}

void Instrument::setParam(int pad, int k, float value) {
    if (pad < 0 || pad >= kPads || k < 0 || k >= kPadParams) return;
    if (params_[pad][k].exchange(value, std::memory_order_relaxed) == value) return;
    pads_[pad].wanted.fetch_add(1);
    sem_post(&wake_);
}

void Instrument::loadSample(int i, const std::string& path, int cls) {
    if (i < 0 || i >= kPads) throw std::runtime_error(path + ": no pad " + std::to_string(i + 1) + " to load it into");
    std::vector<float> clip = prepareClip(readSound(path, model_->sampleRate()), size_t(model_->nSamples()),
                                          model_->sampleRate(), model_->fadeMs(), model_->fadeShape());
    int used = cls;
    std::vector<float> z = model_->encode(clip, cls, &used);
    PadSpec p = pad(i);
    p.voice.cls = used;
    p.voice.z = z;
    p.voice.seed.reset();
    p.voice.temperature.reset();
    setPad(i, p);
}

PadSpec Instrument::pad(int i) const {
    std::lock_guard<std::mutex> g(specLock_);
    return specs_[i];
}

void Instrument::setPad(int i, const PadSpec& spec) {
    {
        std::lock_guard<std::mutex> g(specLock_);
        specs_[i] = spec;
        syncParams();
    }
    publishSettings();
    pads_[i].wanted.fetch_add(1);
    sem_post(&wake_);
}

void Instrument::publishSettings() {
    std::lock_guard<std::mutex> g(specLock_);
    const auto& names = model_->classes();
    for (int i = 0; i < kPads; ++i) {
        pads_[i].note = specs_[i].note;
        const std::string& c = names[specs_[i].voice.cls];
        pads_[i].hat = c == "hh_closed" ? 1 : c == "hh_open" ? 2 : 0;
    }
}

void Instrument::setPads(const std::array<PadSpec, kPads>& p, bool wait) {
    {
        std::lock_guard<std::mutex> g(specLock_);
        specs_ = p;
        syncParams();
    }
    publishSettings();
    for (auto& pad : pads_) pad.wanted.fetch_add(1);
    sem_post(&wake_);
    if (wait) waitRendered(30.0);
}

void Instrument::setHostRate(double rate, bool wait) {
    if (rate == hostRate_.load()) return;
    hostRate_ = rate;
    for (auto& pad : pads_) pad.wanted.fetch_add(1);
    sem_post(&wake_);
    if (wait) waitRendered(30.0);
}

bool Instrument::waitRendered(double seconds) {
    if (!live_) return true;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
        bool done = true;
        for (auto& p : pads_) done = done && p.finished.load() >= p.wanted.load();
        if (done) return true;
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

std::vector<float> Instrument::padSample(int i, int take) {
    std::lock_guard<std::mutex> g(sampleCopyLock_);
    const auto& s = lastRendered_[i];
    return s && take >= 0 && take < int(s->takes.size()) ? s->takes[take] : std::vector<float>();
}

void Instrument::publish(int i, std::vector<std::vector<float>> takes, uint64_t gen) {
    auto* s = new Sample{std::move(takes), gen};
    {
        std::lock_guard<std::mutex> g(sampleCopyLock_);
        lastRendered_[i] = std::make_shared<const Sample>(*s);
    }
    delete pads_[i].incoming.exchange(s);  // a sample the audio thread never took is freed here
}

void Instrument::renderPad(int i) {
    const uint64_t gen = pads_[i].wanted.load();
    PadSpec spec;
    bool changed = false;
    {
        std::lock_guard<std::mutex> g(specLock_);
        for (int k = 0; k < kPadParams; ++k) {  // automation since the last render
            const float v = params_[i][k].load();
            if (v == merged_[i][k]) continue;
            if (k == kClass && (v < 0 || std::lround(v) >= long(model_->classes().size()))) continue;
            specFromParam(specs_[i], k, v);
            merged_[i][k] = v;
            changed = true;
        }
        spec = specs_[i];
    }
    if (changed) publishSettings();
    const double rate = hostRate_.load();
    std::vector<float> z;
    auto take = [&](int k) {
        std::vector<float> zk = z;
        if (k > 0) {
            std::vector<double> eps = NumpyNormal(uint64_t(k)).draw(zk.size());
            for (size_t d = 0; d < zk.size(); ++d)
                zk[d] = float(double(zk[d]) + kHumaniseScale * spec.humanise * eps[d]);
        }
        std::vector<float> wave = model_->generate(spec.voice.cls, zk);
        wave = applySampler(wave, model_->sampleRate(), spec.sampler);
        return resample(wave, model_->sampleRate(), rate);
    };
    std::vector<std::vector<float>> takes;
    try {
        z = model_->voiceZ(spec.voice);
        takes.push_back(take(0));
    } catch (const std::exception&) {
        takes.assign(1, std::vector<float>(1, 0.0f));  // a pad whose settings cannot be rendered is silent
        z.clear();
    }
    publish(i, takes, gen);  // playable now; the humanised takes follow
    pads_[i].rendered = gen;
    if (spec.humanise > 0 && !z.empty()) {
        try {
            for (int k = 1; k < kTakes && pads_[i].wanted.load() == gen && !stop_; ++k) takes.push_back(take(k));
        } catch (const std::exception&) {
        }
        if (int(takes.size()) == kTakes) publish(i, std::move(takes), gen);
    }
    pads_[i].finished = gen;
}

void Instrument::worker() {
    while (!stop_) {
        timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;  // wake now and then to free what the audio thread gave back
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec += 1; ts.tv_nsec -= 1000000000; }
        sem_timedwait(&wake_, &ts);
        while (sem_trywait(&wake_) == 0) {}  // many changes, one pass: only the newest settings matter
        while (ringTail_.load() != ringHead_.load()) {
            delete ring_[ringTail_.load() % ring_.size()].load();
            ringTail_.fetch_add(1);
        }
        for (int i = 0; i < kPads && !stop_; ++i)
            if (pads_[i].rendered.load() < pads_[i].wanted.load()) renderPad(i);
    }
}

void Instrument::retire(const Sample* s) {
    if (!s) return;
    const uint32_t h = ringHead_.load();
    if (h - ringTail_.load() >= ring_.size()) return;  // full (the worker is stuck): leak rather than free here
    ring_[h % ring_.size()].store(s);
    ringHead_.store(h + 1);
}

void Instrument::takeIncoming() {
    for (int i = 0; i < kPads; ++i) {
        Pad& p = pads_[i];
        for (auto& o : p.old) {  // replaced samples no voice plays any more go back to the worker
            if (!o) continue;
            bool used = false;
            for (const auto& v : voices_) used = used || (v.sample == o);
            if (!used) { retire(o); o = nullptr; }
        }
        Sample* s = p.incoming.exchange(nullptr);
        if (!s) continue;
        const Sample* before = p.current;
        p.current = s;
        if (!before) continue;
        bool used = false;
        for (const auto& v : voices_) used = used || (v.sample == before);
        if (!used) { retire(before); continue; }
        auto slot = std::find(p.old.begin(), p.old.end(), nullptr);
        if (slot == p.old.end()) {  // too many generations still ringing: the oldest stops
            for (auto& v : voices_) if (v.sample == p.old[0]) v.sample = nullptr;
            retire(p.old[0]);
            slot = p.old.begin();
        }
        *slot = before;
    }
}

void Instrument::noteOn(int note, int velocity, uint32_t frame) {
    if (velocity <= 0 || nEvents_ >= events_.size()) return;
    for (int i = 0; i < kPads; ++i) {
        if (pads_[i].note.load(std::memory_order_relaxed) != note) continue;
        const float v = float(velocity) / 127.0f;
        events_[nEvents_++] = Event{frame, i, v * v};
    }
}

void Instrument::startVoice(int pad, float gain) {
    Pad& p = pads_[pad];
    const Sample* s = p.current;
    if (!s || s->takes.empty()) return;
    const std::vector<float>* take = &s->takes[p.hits++ % s->takes.size()];
    if (pads_[pad].hat.load(std::memory_order_relaxed) == 1) {  // a closed hat chokes the open hats
        const int fade = std::max(1, int(std::lround(kChokeSeconds * hostRate_.load())));
        for (auto& v : voices_)
            if (v.sample && pads_[v.pad].hat.load(std::memory_order_relaxed) == 2 && v.fade == 0) v.fade = fade;
    }
    Voice* slot = nullptr;
    for (auto& v : voices_)
        if (!v.sample) { slot = &v; break; }
    if (!slot) {  // all busy: the one furthest through its sound makes way
        slot = &voices_[0];
        for (auto& v : voices_)
            if (double(v.pos) / v.take->size() > double(slot->pos) / slot->take->size()) slot = &v;
    }
    *slot = Voice{s, take, 0, gain, pad, 0};
}

void Instrument::renderVoices(float* l, float* r, uint32_t from, uint32_t to) {
    for (auto& v : voices_) {
        if (!v.sample) continue;
        const float* d = v.take->data();
        const size_t n = v.take->size();
        const int fadeLen = std::max(1, int(std::lround(kChokeSeconds * hostRate_.load())));
        for (uint32_t k = from; k < to && v.pos < n; ++k, ++v.pos) {
            float g = v.gain;
            if (v.fade > 0) {
                g *= float(v.fade) / float(fadeLen + 1);
                if (--v.fade == 0) { v.pos = n; break; }
            }
            const float s = d[v.pos] * g;
            l[k] += s;
            r[k] += s;
        }
        if (v.pos >= n) v.sample = nullptr;
    }
}

void Instrument::process(float* left, float* right, uint32_t frames) {
    takeIncoming();
    std::fill(left, left + frames, 0.0f);
    std::fill(right, right + frames, 0.0f);
    for (uint32_t i = 1; i < nEvents_; ++i)  // in time order (hosts send them so; an insertion sort allocates nothing)
        for (uint32_t j = i; j > 0 && events_[j].frame < events_[j - 1].frame; --j) std::swap(events_[j], events_[j - 1]);
    uint32_t at = 0;
    for (uint32_t e = 0; e < nEvents_; ++e) {
        const uint32_t f = std::min(events_[e].frame, frames);
        renderVoices(left, right, at, f);
        at = f;
        startVoice(events_[e].pad, events_[e].gain);
    }
    renderVoices(left, right, at, frames);
    nEvents_ = 0;
}

void Instrument::allNotesOff() {
    for (auto& v : voices_) v.sample = nullptr;
    for (auto& p : pads_) p.hits = 0;  // a render from the start plays the same takes each time
    nEvents_ = 0;
}

}  // namespace nd

namespace nd {

float paramFromSpec(const PadSpec& p, int k) {
    switch (k) {
        case kClass: return float(p.voice.cls);
        case kX: return float(p.voice.x);
        case kY: return float(p.voice.y);
        case kFine: return float(p.voice.fine);
        case kRange: return float(p.voice.range);
        case kSeed:  // a seed past the parameter's range (a kit's) shows as its low 24 bits; the kit keeps it whole
            return p.voice.seed && p.voice.z.empty() ? float(*p.voice.seed & 0xFFFFFF) : -1.0f;
        case kVariation: return float(p.voice.amount);
        case kTune: return float(p.sampler.tune);
        case kDecay: return p.sampler.decay ? float(*p.sampler.decay) : 0.0f;
        case kLevel: return float(std::pow(p.sampler.velocity / 127.0, p.sampler.curve));
        case kHumanise: return float(p.humanise);
    }
    return 0;
}

void specFromParam(PadSpec& p, int k, float v) {
    switch (k) {
        case kClass: p.voice.cls = int(std::lround(v)); break;
        case kX: p.voice.x = v; p.voice.hasControls = true; break;
        case kY: p.voice.y = v; p.voice.hasControls = true; break;
        case kFine: p.voice.fine = v; p.voice.hasControls = true; break;
        case kRange: p.voice.range = v; break;
        case kSeed:
            p.voice.z.clear();
            if (v < 0) p.voice.seed.reset(); else p.voice.seed = uint64_t(std::llround(v));
            break;
        case kVariation: p.voice.amount = v; break;
        case kTune: p.sampler.tune = v; break;
        case kDecay: if (v <= 0) p.sampler.decay.reset(); else p.sampler.decay = double(v); break;
        case kLevel:  // the kit's sampler velocity for this gain on its curve
            p.sampler.velocity = std::max(1.0, 127.0 * std::pow(double(std::max(v, 0.0f)), 1.0 / std::max(p.sampler.curve, 1e-9)));
            break;
        case kHumanise: p.humanise = std::max(0.0f, v); break;
    }
}

}  // namespace nd
