// What happens to a finished wave after the model: neuraldrum.sampler.apply_sampler (tune, decay, peak -1 dBFS,
// level) and the resampling from the model's rate to the host's. libsoxr, as the Python package uses.
#pragma once
#include <optional>
#include <vector>

namespace nd {

struct SamplerSpec {
    double tune = 0;                // semitones, [-12, 12]: pitch and length together, as a sampler
    std::optional<double> decay;    // seconds to fall 60 dB; none: the sound's own
    double velocity = 127;          // the kit's sampler velocity: gain (velocity / 127) ** curve
    double curve = 2;
    std::optional<double> length;   // seconds; none: the model's length
    bool normalise = true;
};

// apply_sampler on one wave at sampleRate (length kept: the tuned sound is cut with a 5 ms fade, or padded)
std::vector<float> applySampler(const std::vector<float>& wave, int sampleRate, const SamplerSpec& s);

// soxr's high quality one-shot resampling from one rate to another (a copy when they are equal)
std::vector<float> resample(const std::vector<float>& wave, double from, double to, bool highQuality = true);

}  // namespace nd
