#include "sampler.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <soxr.h>

namespace nd {

std::vector<float> resample(const std::vector<float>& wave, double from, double to, bool highQuality) {
    if (from == to || wave.empty()) return wave;
    const size_t olen = size_t(std::llround(double(wave.size()) * to / from));
    std::vector<float> out(olen);
    size_t odone = 0;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(highQuality ? SOXR_HQ : SOXR_MQ, 0);
    soxr_error_t err = soxr_oneshot(from, to, 1, wave.data(), wave.size(), nullptr, out.data(), olen, &odone, &io,
                                    &q, nullptr);
    if (err) throw std::runtime_error(std::string("resampling failed: ") + err);
    out.resize(odone);
    return out;
}

std::vector<float> applySampler(const std::vector<float>& wave, int sampleRate, const SamplerSpec& s) {
    const size_t n = s.length ? size_t(std::nearbyint(*s.length * sampleRate)) : wave.size();
    std::vector<float> rows = wave;
    if (s.tune != 0) rows = resample(wave, sampleRate, sampleRate * std::pow(2.0, -s.tune / 12.0), false);
    std::vector<float> y(n, 0.0f);
    std::copy_n(rows.begin(), std::min(n, rows.size()), y.begin());
    if (rows.size() > n && n > 0) {  // a cut: raised-cosine fade-out ending at exactly 0
        const size_t f = std::min(n, size_t(std::max(1L, long(std::nearbyint(0.005 * sampleRate)))));
        for (size_t i = 0; i < f; ++i)
            y[n - f + i] *= float(0.5 + 0.5 * std::cos(M_PI * double(i + 1) / double(f)));
    }
    if (s.decay) {
        const float rate = float(-std::log(1000.0) / (*s.decay * sampleRate));
        for (size_t i = 0; i < n; ++i) y[i] *= std::exp(float(i) * rate);
    }
    float peak = 0;
    for (float v : y) peak = std::max(peak, std::fabs(v));
    if (s.normalise && peak > 1.17549435e-38f) {
        const float g = float(std::pow(10.0, -1.0 / 20.0)) / peak;
        for (float& v : y) v *= g;
    }
    const double gain = std::pow(s.velocity / 127.0, s.curve);
    if (gain != 1.0)
        for (float& v : y) v *= float(gain);
    return y;
}

}  // namespace nd
