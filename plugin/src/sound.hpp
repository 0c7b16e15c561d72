// "Load sample…": a sound file → the clip the analyzer graph expects, prepared as export.json's
// graphs.analyzer.wave says (neuraldrum.audio.io.prepare_clip): mono at the model's rate, onset-aligned (the first
// sample within 36 dB of the peak, less 16 samples faded in), cut to n_samples with a fade or padded, peak 1.0.
#pragma once
#include <string>
#include <vector>

namespace nd {

// WAV, FLAC, AIFF, … (libsndfile) mixed to mono and resampled to `rate`. Throws std::runtime_error naming the file.
std::vector<float> readSound(const std::string& path, int rate, double maxSeconds = 60.0);

// fadeShape: "cosine" or "decay" (export.json's fade_shape)
std::vector<float> prepareClip(std::vector<float> x, size_t n, int rate, double fadeMs, const std::string& fadeShape);

}  // namespace nd
