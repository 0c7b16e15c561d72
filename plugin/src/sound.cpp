#include "sound.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <sndfile.h>

#include "sampler.hpp"

namespace nd {

std::vector<float> readSound(const std::string& path, int rate, double maxSeconds) {
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    if (!f) throw std::runtime_error(path + ": unreadable (" + sf_strerror(nullptr) + ")");
    std::vector<float> mono;
    try {
        if (info.frames <= 0 || info.channels <= 0) throw std::runtime_error(path + ": empty audio (0 frames)");
        if (double(info.frames) / info.samplerate > maxSeconds)
            throw std::runtime_error(path + ": too long (more than " + std::to_string(int(maxSeconds)) + " s)");
        std::vector<float> buf(size_t(info.frames) * size_t(info.channels));
        const sf_count_t got = sf_readf_float(f, buf.data(), info.frames);
        if (got <= 0) throw std::runtime_error(path + ": no audio decodes");
        mono.resize(size_t(got));
        for (sf_count_t i = 0; i < got; ++i) {  // the mean of the channels, in float32 as numpy's
            float s = 0;
            for (int c = 0; c < info.channels; ++c) s += buf[size_t(i) * info.channels + c];
            mono[size_t(i)] = info.channels > 1 ? s / float(info.channels) : s;
        }
    } catch (...) {
        sf_close(f);
        throw;
    }
    sf_close(f);
    for (float v : mono)
        if (!std::isfinite(v)) throw std::runtime_error(path + ": holds NaN or infinite samples");
    return resample(mono, info.samplerate, rate);
}

std::vector<float> prepareClip(std::vector<float> x, size_t n, int rate, double fadeMs, const std::string& fadeShape) {
    float peak = 0;
    for (float v : x) peak = std::max(peak, std::fabs(v));
    size_t start = 0;
    if (peak > 0) {
        const float threshold = float(double(peak) * std::pow(10.0, -36.0 / 20.0));
        size_t i = 0;
        while (i < x.size() && std::fabs(x[i]) < threshold) ++i;
        start = i >= 16 ? i - 16 : 0;
    }
    std::vector<float> y(x.begin() + long(start), x.end());
    const size_t pre = std::min<size_t>(16, y.size());
    if (pre > 1)
        for (size_t i = 0; i < pre; ++i) y[i] *= float(double(i) / double(pre - 1));
    std::vector<float> out(n, 0.0f);
    std::copy_n(y.begin(), std::min(n, y.size()), out.begin());
    if (y.size() > n) {
        const size_t f = std::min(n, size_t(std::max(1.0, std::nearbyint(rate * fadeMs / 1000.0))));
        for (size_t i = 0; i < f; ++i) {
            const double u = f > 1 ? double(i) / double(f - 1) : 0.0;
            double g = 0.5 + 0.5 * std::cos(M_PI * u);
            if (fadeShape == "decay") g *= std::pow(10.0, -60.0 / 20.0 * u);
            out[n - f + i] *= float(g);
        }
    }
    float p = 0;
    for (float v : out) p = std::max(p, std::fabs(v));
    if (p > 0)
        for (float& v : out) v = v * (1.0f / p);
    return out;
}

}  // namespace nd
