// neuraldrum_host EXPORT_FOLDER OUT_FOLDER [SEED]
// Loads EXPORT_FOLDER/generator.pt (`neuraldrum export --format libtorch`) with LibTorch, reads the sizes and
// class names from EXPORT_FOLDER/meta.txt (key=value lines), draws one latent per class from the prior
// N(0, t^2 I) (t = prior_temperature), generates all classes in one batch and writes OUT_FOLDER/<class>.wav
// (16-bit PCM mono). No Python anywhere.
#include <torch/script.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

static std::map<std::string, std::string> read_meta(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

static void put(std::ofstream& f, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) f.put(static_cast<char>((v >> (8 * i)) & 0xFF));
}

static void write_wav(const std::string& path, const float* x, int64_t n, int rate) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot write");
  f << "RIFF"; put(f, 36 + 2 * n, 4); f << "WAVEfmt "; put(f, 16, 4); put(f, 1, 2); put(f, 1, 2);
  put(f, rate, 4); put(f, 2 * rate, 4); put(f, 2, 2); put(f, 16, 2); f << "data"; put(f, 2 * n, 4);
  for (int64_t i = 0; i < n; ++i) {
    float v = std::max(-1.0f, std::min(1.0f, x[i]));
    put(f, static_cast<uint16_t>(static_cast<int16_t>(v * 32767.0f)), 2);
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: neuraldrum_host EXPORT_FOLDER OUT_FOLDER [SEED]\n";
    return 2;
  }
  const std::string dir = argv[1], out = argv[2];
  const unsigned seed = argc > 3 ? std::stoul(argv[3]) : 0;
  try {
    auto meta = read_meta(dir + "/meta.txt");
    const int rate = std::stoi(meta.at("sample_rate"));
    const int64_t n = std::stoll(meta.at("n_samples")), dim = std::stoll(meta.at("latent_dim"));
    const float temperature = std::stof(meta.at("prior_temperature"));
    std::vector<std::string> classes;
    std::stringstream ss(meta.at("classes"));
    for (std::string c; std::getline(ss, c, ',');) classes.push_back(c);
    const int64_t b = static_cast<int64_t>(classes.size());

    torch::jit::script::Module gen = torch::jit::load(dir + "/generator.pt");
    gen.eval();
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, temperature);
    auto z = torch::empty({b, dim});
    auto za = z.accessor<float, 2>();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < dim; ++j) za[i][j] = normal(rng);
    auto cls = torch::arange(b, torch::kLong);
    torch::NoGradGuard no_grad;
    at::Tensor wave = gen.forward({cls, z}).toTensor().contiguous();
    if (wave.size(0) != b || wave.size(1) != n) throw std::runtime_error("unexpected output shape");
    for (int64_t i = 0; i < b; ++i) {
      write_wav(out + "/" + classes[i] + ".wav", wave[i].data_ptr<float>(), n, rate);
      std::cout << out << "/" << classes[i] << ".wav\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "neuraldrum_host: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
