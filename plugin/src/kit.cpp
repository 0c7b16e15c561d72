#include "kit.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace nd {
namespace {

using json = nlohmann::json;

std::runtime_error bad(const std::string& where, const std::string& what) {
    return std::runtime_error("kit " + where + ": " + what);
}

double number(const json& v, const std::string& where, double lo, double hi) {
    if (!v.is_number()) throw bad(where, "must be a number");
    const double d = v.get<double>();
    if (!(d >= lo && d <= hi)) throw bad(where, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return d;
}

uint64_t seedOf(const json& v, const std::string& where) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0) throw bad(where, "must be an integer in [0, 2**63)");
    return v.get<uint64_t>();
}

}  // namespace

std::string kitToJson(const Model& m, const std::array<PadSpec, kPads>& pads) {
    json slots = json::array();
    for (const auto& p : pads) {
        const VoiceSpec& v = p.voice;
        json voice = {{"class", m.classes()[v.cls]}};
        if (v.seed) voice["seed"] = *v.seed;
        if (v.temperature) voice["temperature"] = *v.temperature;
        if (v.amount > 0) voice["variation_seed"] = v.variationSeed;
        if (!v.z.empty()) voice["z"] = v.z;
        if (v.hasControls && (v.x != 0 || v.y != 0 || v.fine != 0 || v.axisI >= 0)) {
            voice["controls"] = {{"x", v.x}, {"y", v.y}, {"fine", v.fine}, {"range", v.range}};
            voice["controls"]["axes"] = v.axisI >= 0 ? json::array({v.axisI, v.axisJ}) : json("pca");
        }
        if (v.amount > 0) voice["amount"] = v.amount;
        const SamplerSpec& s = p.sampler;
        if (s.tune != 0 || s.decay || s.velocity != 127 || s.curve != 2 || s.length || !s.normalise) {
            voice["sampler"] = {{"tune", s.tune}, {"velocity", s.velocity}, {"velocity_curve", s.curve},
                                {"normalise", s.normalise}};
            voice["sampler"]["decay"] = s.decay ? json(*s.decay) : json(nullptr);
            voice["sampler"]["length"] = s.length ? json(*s.length) : json(nullptr);
        }
        slots.push_back({{"name", p.name}, {"note", p.note}, {"file", p.name + ".wav"}, {"voice", voice}});
    }
    json kit = {{"format", "neuraldrum-kit"}, {"version", 1}, {"name", "plugin"}, {"sample_rate", m.sampleRate()},
                {"model", {{"sha256", m.sha256()}, {"path", nullptr}}}, {"slots", slots}};
    json humanise = json::array();
    bool any = false;
    for (const auto& p : pads) humanise.push_back(p.humanise), any = any || p.humanise > 0;
    if (any) kit["info"] = {{"humanise", humanise}};  // the plugin's round robin, per slot (other readers ignore it)
    return kit.dump(1);
}

std::array<PadSpec, kPads> kitFromJson(const Model& m, const std::string& text, int* hifi) {
    json k;
    try {
        k = json::parse(text);
    } catch (const json::exception& e) {
        throw std::runtime_error(std::string("kit: not valid JSON (") + e.what() + ")");
    }
    if (!k.is_object() || k.value("format", json()) != "neuraldrum-kit")
        throw bad("format", "not a neuraldrum kit");
    if (k.value("version", json()) != 1) throw bad("version", "only version 1 is read");
    if (!k.contains("slots") || !k["slots"].is_array() || k["slots"].empty()) throw bad("slots", "must be a list");
    if (hifi) {
        const json info = k.value("info", json::object());
        *hifi = info.is_object() && info.contains("hifi") && info["hifi"].is_number_integer() ? info["hifi"].get<int>()
                                                                                           : 0;
    }
    std::array<PadSpec, kPads> pads = defaultPads(m);
    const size_t n = std::min<size_t>(kPads, k["slots"].size());
    json humanise = json::array();
    if (k.contains("info") && k["info"].is_object() && k["info"].contains("humanise")) humanise = k["info"]["humanise"];
    if (!humanise.is_array()) throw bad("info.humanise", "must be a list of numbers, one a slot");
    for (size_t i = 0; i < n; ++i) {
        const std::string w = "slots[" + std::to_string(i) + "]";
        const json& s = k["slots"][i];
        if (!s.is_object() || !s.contains("name") || !s.contains("voice") || !s["voice"].is_object())
            throw bad(w, "needs 'name' and 'voice'");
        PadSpec p;
        p.name = s["name"].is_string() ? s["name"].get<std::string>() : throw bad(w + ".name", "must be a string");
        const json& v = s["voice"];
        const std::string cls = v.value("class", std::string());
        p.voice.cls = m.classIndex(cls);
        if (p.voice.cls < 0) throw bad(w + ".voice.class", "'" + cls + "' is not a class of this model");
        p.note = pads[p.voice.cls].note;
        for (const auto& d : pads)
            if (m.classes()[d.voice.cls] == cls) p.note = d.note;
        if (s.contains("note") && !s["note"].is_null()) p.note = int(number(s["note"], w + ".note", 0, 127));
        if (v.contains("seed") && !v["seed"].is_null()) p.voice.seed = seedOf(v["seed"], w + ".voice.seed");
        if (v.contains("temperature") && !v["temperature"].is_null())
            p.voice.temperature = number(v["temperature"], w + ".voice.temperature", 0, 10);
        if (v.contains("z") && !v["z"].is_null()) {
            if (!v["z"].is_array() || int(v["z"].size()) != m.latentDim())
                throw bad(w + ".voice.z", "must be " + std::to_string(m.latentDim()) + " numbers");
            for (const auto& x : v["z"]) p.voice.z.push_back(float(number(x, w + ".voice.z", -1e4, 1e4)));
        }
        p.voice.hasControls = true;
        if (v.contains("controls") && !v["controls"].is_null()) {
            const json& c = v["controls"];
            const std::string cw = w + ".voice.controls";
            p.voice.x = number(c.value("x", json(0.0)), cw + ".x", -1, 1);
            p.voice.y = number(c.value("y", json(0.0)), cw + ".y", -1, 1);
            p.voice.fine = number(c.value("fine", json(0.0)), cw + ".fine", -1, 1);
            p.voice.range = number(c.value("range", json(2.0)), cw + ".range", 1e-9, 1e3);
            const json axes = c.value("axes", json("pca"));
            if (axes.is_array() && axes.size() == 2) {
                p.voice.axisI = int(number(axes[0], cw + ".axes", 0, m.latentDim() - 1));
                p.voice.axisJ = int(number(axes[1], cw + ".axes", 0, m.latentDim() - 1));
            } else if (axes != "pca") {
                throw bad(cw + ".axes", "use 'pca' or two latent dimensions");
            }
        }
        p.voice.amount = v.contains("amount") ? number(v["amount"], w + ".voice.amount", 0, 100) : 0.0;
        if (p.voice.amount > 0) {
            if (!v.contains("variation_seed")) throw bad(w + ".voice.variation_seed", "needed when amount > 0");
            p.voice.variationSeed = seedOf(v["variation_seed"], w + ".voice.variation_seed");
        }
        if (v.contains("sampler") && v["sampler"].is_object()) {
            const json& c = v["sampler"];
            const std::string sw = w + ".voice.sampler";
            p.sampler.tune = number(c.value("tune", json(0.0)), sw + ".tune", -12, 12);
            if (c.contains("decay") && !c["decay"].is_null()) p.sampler.decay = number(c["decay"], sw + ".decay", 1e-9, 1e9);
            p.sampler.velocity = number(c.value("velocity", json(127.0)), sw + ".velocity", 1, 127);
            p.sampler.curve = number(c.value("velocity_curve", json(2.0)), sw + ".velocity_curve", 0, 1e9);
            if (c.contains("length") && !c["length"].is_null())
                p.sampler.length = number(c["length"], sw + ".length", 0.001, 60);
            p.sampler.normalise = c.value("normalise", true);
        }
        if (i < humanise.size()) p.humanise = number(humanise[i], "info.humanise[" + std::to_string(i) + "]", 0, 1);
        pads[i] = p;
    }
    return pads;
}

}  // namespace nd
