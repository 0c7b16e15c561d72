#include "model.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openvino/frontend/manager.hpp>
#include <openvino/openvino.hpp>

#include "npyrandom.hpp"

namespace nd {
namespace {

using json = nlohmann::json;

std::runtime_error bad(const std::string& file, const std::string& what) {
    return std::runtime_error(file + ": " + what);
}

std::vector<float> floats(const json& j, const std::string& file, const std::string& field) {
    std::vector<float> out;
    try {
        if (j.is_array() && !j.empty() && j[0].is_array()) {
            for (const auto& row : j) {
                auto r = floats(row, file, field);
                out.insert(out.end(), r.begin(), r.end());
            }
        } else {
            for (const auto& v : j) out.push_back(v.get<float>());
        }
    } catch (const json::exception&) {
        throw bad(file, "field '" + field + "' must hold numbers");
    }
    return out;
}

}  // namespace

struct Model::Runtime {
    ov::Core core;
    ov::CompiledModel compiled, analyzer;
    ov::InferRequest request, analyze;
};

Model::Model(const std::string& folder) {
    const std::string file = folder + "/export.json";
    std::ifstream in(file);
    if (!in) throw bad(file, "cannot be read (the plugin's model files are missing)");
    json m;
    try {
        m = json::parse(in);
    } catch (const json::exception& e) {
        throw bad(file, std::string("not valid JSON (") + e.what() + ")");
    }
    try {
        if (m.at("format") != "neuraldrum-export") throw bad(file, "not a neuraldrum export (field 'format')");
        classes_ = m.at("classes").get<std::vector<std::string>>();
        sampleRate_ = m.at("sample_rate").get<int>();
        nSamples_ = m.at("n_samples").get<int>();
        latentDim_ = m.at("latent_dim").get<int>();
        temperature_ = m.at("prior_temperature").get<double>();
        sha256_ = m.value("bundle_sha256", std::string());
        fadeMs_ = m.value("fade_ms", 10.0);
        fadeShape_ = m.value("fade_shape", std::string("cosine"));
        hasClassifier_ = m.value("has_classifier", false);
    } catch (const json::exception& e) {
        throw bad(file, std::string("missing or wrong field (") + e.what() + ")");
    }
    const int D = latentDim_, C = int(classes_.size());
    auto readPca = [&](const json& p, const std::string& name) {
        Pca out;
        out.mean = floats(p.at("mean"), file, "pca." + name + ".mean");
        out.axes = floats(p.at("axes"), file, "pca." + name + ".axes");
        out.scales = floats(p.at("scales"), file, "pca." + name + ".scales");
        out.k = int(out.scales.size());
        if (int(out.mean.size()) != D || int(out.axes.size()) != out.k * D)
            throw bad(file, "field 'pca." + name + "' has the wrong sizes for latent_dim " + std::to_string(D));
        return out;
    };
    pcaByClass_.resize(C);
    const json& pcas = m.value("pca", json::object());
    for (int c = 0; c < C; ++c)
        if (pcas.contains(classes_[c])) pcaByClass_[c] = readPca(pcas[classes_[c]], classes_[c]);
    if (pcas.contains("all")) pcaAll_ = readPca(pcas["all"], "all");
    if (m.contains("prior") && m["prior"].is_object()) {
        priorMean_ = floats(m["prior"].at("mean"), file, "prior.mean");
        priorChol_ = floats(m["prior"].at("chol"), file, "prior.chol");
        if (int(priorMean_.size()) != C * D || int(priorChol_.size()) != C * D * D)
            throw bad(file, "field 'prior' has the wrong sizes");
    }
    folder_ = folder;
}

std::shared_ptr<Model> Model::shared(const std::string& folder) {
    static std::mutex lock;
    static std::map<std::string, std::weak_ptr<Model>> models;
    std::lock_guard<std::mutex> g(lock);
    if (auto m = models[folder].lock()) return m;
    auto m = std::make_shared<Model>(folder);
    models[folder] = m;
    return m;
}

void Model::compile() {
    rt_ = std::make_unique<Runtime>();
    const std::string graph = folder_ + "/generator.onnx";
    try {
        auto model = rt_->core.read_model(graph);
        // f32: this CPU's default (bf16) inference precision moves a sound by ~1e-2; f32 matches torch to ~1e-4
        rt_->compiled = rt_->core.compile_model(model, "CPU", ov::hint::inference_precision(ov::element::f32),
                                                ov::inference_num_threads(1), ov::hint::num_requests(1));
        rt_->request = rt_->compiled.create_infer_request();
    } catch (const std::exception& e) {
        throw bad(graph, std::string("OpenVINO cannot load it (") + e.what() + ")");
    }
}

Model::~Model() = default;

int Model::classIndex(const std::string& name) const {
    for (size_t i = 0; i < classes_.size(); ++i)
        if (classes_[i] == name) return int(i);
    return -1;
}

const Model::Pca* Model::pca(int cls) const {
    if (pcaByClass_[cls].k > 0) return &pcaByClass_[cls];
    return pcaAll_.k > 0 ? &pcaAll_ : nullptr;
}

std::vector<float> Model::voiceZ(const VoiceSpec& v) const {
    const int D = latentDim_;
    if (v.cls < 0 || v.cls >= int(classes_.size())) throw std::runtime_error("voice class index out of range");
    const Pca* p = pca(v.cls);
    std::vector<float> z(D, 0.0f);
    if (!v.z.empty()) {
        if (int(v.z.size()) != D) throw std::runtime_error("voice z has the wrong size");
        z = v.z;
    } else if (v.seed) {
        // Engine.sample_prior: z = mean_c + t * eps @ chol_c^T in float64, then float32 (or t * eps)
        const double t = v.temperature ? *v.temperature : temperature_;
        std::vector<double> eps = NumpyNormal(*v.seed).draw(D);
        for (int i = 0; i < D; ++i) {
            double s;
            if (priorMean_.empty()) {
                s = t * eps[i];
            } else {
                const float* L = &priorChol_[(size_t(v.cls) * D + i) * D];
                double dot = 0;
                for (int j = 0; j < D; ++j) dot += eps[j] * double(L[j]);
                s = double(priorMean_[size_t(v.cls) * D + i]) + t * dot;
            }
            z[i] = float(s);
        }
    } else if (p) {
        z = p->mean;
    }
    if (v.hasControls && v.axisI >= 0) {
        if (v.axisI >= D || v.axisJ < 0 || v.axisJ >= D) throw std::runtime_error("control axes out of range");
        z[v.axisI] += float(0.5 * v.range * v.x);
        z[v.axisJ] += float(0.5 * v.range * v.y);
    } else if (v.hasControls) {
        if (!p) throw std::runtime_error("this model has no PCA axes for the pad controls");
        const int k = std::min(3, p->k);
        const float c[3] = {float(v.x), float(v.y), float(v.fine)};
        float w[3];
        for (int a = 0; a < k; ++a) w[a] = c[a] * p->scales[a];
        const float half = float(0.5 * v.range);
        for (int i = 0; i < D; ++i) {
            float s = 0;
            for (int a = 0; a < k; ++a) s += w[a] * p->axes[size_t(a) * D + i];
            z[i] = z[i] + half * s;
        }
    }
    if (v.amount > 0) {
        std::vector<double> n = NumpyNormal(v.variationSeed).draw(D);
        for (int i = 0; i < D; ++i) z[i] = float(double(z[i]) + v.amount * n[i]);
    }
    return z;
}

std::vector<float> Model::encode(const std::vector<float>& clip, int cls, int* clsUsed) {
    std::lock_guard<std::mutex> g(runLock_);
    if (!rt_) compile();
    if (int(clip.size()) != nSamples_) throw std::runtime_error("a clip for the analyzer must have n_samples samples");
    if (cls < 0 && !hasClassifier_) throw std::runtime_error("this model has no classifier: choose the pad's class");
    if (!rt_->analyze) {
        const std::string graph = folder_ + "/analyzer.onnx";
        try {
            // OpenVINO's ONNX reader cannot type the analyzer's STFT with a free batch size: fix it at 1 first
            ov::frontend::FrontEndManager fem;
            auto fe = fem.load_by_framework("onnx");
            auto input = fe->load(graph);
            input->set_partial_shape(input->get_place_by_tensor_name("wave"), ov::PartialShape{1, nSamples_});
            input->set_partial_shape(input->get_place_by_tensor_name("cls"), ov::PartialShape{1});
            rt_->analyzer = rt_->core.compile_model(fe->convert(input), "CPU",
                                                    ov::hint::inference_precision(ov::element::f32),
                                                    ov::inference_num_threads(1), ov::hint::num_requests(1));
            rt_->analyze = rt_->analyzer.create_infer_request();
        } catch (const std::exception& e) {
            throw bad(graph, std::string("OpenVINO cannot load it (") + e.what() + ")");
        }
    }
    ov::Tensor w(ov::element::f32, ov::Shape{1, size_t(nSamples_)});
    std::copy(clip.begin(), clip.end(), w.data<float>());
    ov::Tensor c(ov::element::i64, ov::Shape{1});
    c.data<int64_t>()[0] = cls;
    rt_->analyze.set_tensor("wave", w);
    rt_->analyze.set_tensor("cls", c);
    rt_->analyze.infer();
    const float* z = rt_->analyze.get_tensor("z").data<const float>();
    if (clsUsed) *clsUsed = int(rt_->analyze.get_tensor("cls_used").data<const int64_t>()[0]);
    return std::vector<float>(z, z + latentDim_);
}

std::vector<float> Model::generate(int cls, const std::vector<float>& z) {
    std::lock_guard<std::mutex> g(runLock_);
    if (!rt_) compile();
    ov::Tensor c(ov::element::i64, ov::Shape{1});
    c.data<int64_t>()[0] = cls;
    ov::Tensor zt(ov::element::f32, ov::Shape{1, size_t(latentDim_)});
    std::copy(z.begin(), z.end(), zt.data<float>());
    rt_->request.set_tensor("cls", c);
    rt_->request.set_tensor("z", zt);
    rt_->request.infer();
    ov::Tensor out = rt_->request.get_tensor("wave");
    const float* w = out.data<const float>();
    return std::vector<float>(w, w + out.get_size());
}

}  // namespace nd
