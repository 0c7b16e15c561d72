// neuraldrum as a DAW instrument (DPF: VST3, LV2). A thin shell: MIDI notes → Instrument::noteOn, automation →
// Instrument::setParam, the project's state → the kit JSON. The model files travel inside the plugin's bundle.
#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <string>

#include "DistrhoPlugin.hpp"
#include "instrument.hpp"
#include "kit.hpp"
#include "params.hpp"

START_NAMESPACE_DISTRHO

namespace {

// the folder of the model files: <bundle>/Contents/Resources/model (VST3) or <bundle>/model (LV2), found from
// where this shared object lies; NEURALDRUM_PLUGIN_MODEL overrides it
std::string modelFolder() {
    if (const char* env = std::getenv("NEURALDRUM_PLUGIN_MODEL")) return env;
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&modelFolder), &info);
    std::string so = info.dli_fname ? info.dli_fname : "";
    std::string dir = so.substr(0, so.rfind('/'));
    for (const char* rel : {"/model", "/../Resources/model"}) {
        std::string f = dir + rel;
        if (FILE* fp = std::fopen((f + "/export.json").c_str(), "r")) {
            std::fclose(fp);
            return f;
        }
    }
    return dir + "/model";
}

}  // namespace

class NeuralDrumPlugin : public Plugin {
public:
    NeuralDrumPlugin() : Plugin(nd::kPads * nd::kPadParams, 0, 1 + nd::kPads) {
        setLatency(0);  // every note plays at its frame: nothing for a host to compensate
        try {
            inst_ = std::make_unique<nd::Instrument>(modelFolder(), getSampleRate() > 0 ? getSampleRate() : 44100.0,
                                                     !isDummyInstance());
        } catch (const std::exception& e) {
            d_stderr2("neuraldrum: %s", e.what());  // the plugin stays silent rather than crash the host
        }
    }

protected:
    const char* getLabel() const override { return "neuraldrum"; }
    const char* getDescription() const override {
        return "A neural drum machine: 11 pads whose sounds a model makes, played from MIDI.";
    }
    const char* getMaker() const override { return "neuraldrum"; }
    const char* getHomePage() const override { return "https://github.com/neuraldrum/neuraldrum"; }
    const char* getLicense() const override { return "MIT"; }
    uint32_t getVersion() const override { return d_version(0, 1, 0); }
    int64_t getUniqueId() const override { return d_cconst('N', 'd', 'r', 'm'); }

    void initAudioPort(bool input, uint32_t index, AudioPort& port) override {
        port.groupId = kPortGroupStereo;
        Plugin::initAudioPort(input, index, port);
    }

    void initParameter(uint32_t index, Parameter& p) override {
        const int pad = int(index) / nd::kPadParams, k = int(index) % nd::kPadParams;
        const nd::ParamInfo& info = nd::paramInfo(k);
        const std::string padName = inst_ ? inst_->pad(pad).name : "pad" + std::to_string(pad + 1);
        p.hints = kParameterIsAutomatable | (info.integer ? kParameterIsInteger : 0);
        p.name = (padName + " " + info.name).c_str();
        p.shortName = info.name;
        p.symbol = ("p" + std::to_string(pad + 1) + "_" + info.symbol).c_str();
        p.ranges.min = info.min;
        p.ranges.max = info.max;
        p.ranges.def = inst_ ? inst_->param(pad, k) : info.def;
        if (k == nd::kClass && inst_) {
            const auto& classes = inst_->model().classes();
            p.ranges.max = float(classes.size() - 1);
            p.enumValues.count = uint32_t(classes.size());
            p.enumValues.restrictedMode = true;
            auto* values = new ParameterEnumerationValue[classes.size()];
            for (size_t c = 0; c < classes.size(); ++c) {
                values[c].value = float(c);
                values[c].label = classes[c].c_str();
            }
            p.enumValues.values = values;
        }
    }

    void initState(uint32_t index, State& state) override {
        state.defaultValue = "";
        if (index == 0) {
            state.key = "kit";
            state.label = "kit (neuraldrum-kit JSON)";
            state.hints = kStateIsOnlyForDSP;
            return;
        }
        // "load sample…" for pad N: a sound file the analyzer graph encodes; the pad starts from its latent
        const std::string name = inst_ ? inst_->pad(int(index) - 1).name : "pad" + std::to_string(index);
        state.key = ("sample" + std::to_string(index)).c_str();
        state.label = (name + ": load sample").c_str();
        state.hints = kStateIsFilenamePath;
    }

    float getParameterValue(uint32_t index) const override {
        return inst_ ? inst_->param(int(index) / nd::kPadParams, int(index) % nd::kPadParams) : 0.0f;
    }

    void setParameterValue(uint32_t index, float value) override {
        if (inst_) inst_->setParam(int(index) / nd::kPadParams, int(index) % nd::kPadParams, value);
    }

    String getState(const char* key) const override {
        if (!inst_ || std::strcmp(key, "kit") != 0) return String();  // a loaded sample lives on in the kit as its z
        inst_->waitRendered(5.0);  // the automation the worker has not merged yet is in the kit too
        return String(nd::kitToJson(inst_->model(), inst_->pads()).c_str());
    }

    void setState(const char* key, const char* value) override {
        if (!inst_ || !value || !*value) return;
        try {
            if (std::strcmp(key, "kit") == 0)
                inst_->setPads(nd::kitFromJson(inst_->model(), value), true);
            else if (std::strncmp(key, "sample", 6) == 0)
                inst_->loadSample(std::atoi(key + 6) - 1, value);
        } catch (const std::exception& e) {
            d_stderr2("neuraldrum: %s", e.what());  // one line naming the file or field; the pads are unchanged
        }
    }

    void activate() override {
        if (!inst_) return;
        inst_->setHostRate(getSampleRate(), true);
        inst_->waitRendered(30.0);  // a new instance's pads (not the audio thread: hosts activate from their own)
        inst_->allNotesOff();
    }

    void sampleRateChanged(double rate) override {
        if (inst_) inst_->setHostRate(rate, true);
    }

    void run(const float**, float** outputs, uint32_t frames, const MidiEvent* events, uint32_t count) override {
        if (!inst_) {
            std::memset(outputs[0], 0, sizeof(float) * frames);
            std::memset(outputs[1], 0, sizeof(float) * frames);
            return;
        }
        for (uint32_t e = 0; e < count; ++e) {
            const uint8_t* d = events[e].size > MidiEvent::kDataSize ? events[e].dataExt : events[e].data;
            if (events[e].size < 3) continue;
            const uint8_t status = d[0] & 0xF0;
            if (status == 0x90 && d[2] > 0) inst_->noteOn(d[1], d[2], events[e].frame);
            else if (status == 0xB0 && (d[1] == 120 || d[1] == 123)) inst_->allNotesOff();
        }
        inst_->process(outputs[0], outputs[1], frames);
    }

private:
    std::unique_ptr<nd::Instrument> inst_;
    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(NeuralDrumPlugin)
};

Plugin* createPlugin() { return new NeuralDrumPlugin(); }

END_NAMESPACE_DISTRHO
