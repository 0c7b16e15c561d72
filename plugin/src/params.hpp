// The per-pad parameters a DAW automates: index = pad * kPadParams + one of these.
#pragma once
#include "instrument.hpp"

namespace nd {

enum PadParam { kClass, kX, kY, kFine, kRange, kSeed, kVariation, kTune, kDecay, kLevel, kHumanise, kPadParams };

struct ParamInfo { const char* symbol; const char* name; float min, max, def; bool integer; };

inline const ParamInfo& paramInfo(int k) {
    static const ParamInfo info[kPadParams] = {
        {"class", "class", 0, 10, 0, true},
        {"x", "x", -1, 1, 0, false},
        {"y", "y", -1, 1, 0, false},
        {"fine", "fine", -1, 1, 0, false},
        {"range", "range", 0.5f, 10, 2, false},          // the paper's 2, 5, 10
        {"seed", "seed", -1, 16777215, -1, true},         // a prior draw; -1: the class centre
        {"variation", "variation", 0, 2, 0, false},       // latent noise amount around the pad's point
        {"tune", "tune", -12, 12, 0, false},              // semitones
        {"decay", "decay", 0, 10, 0, false},              // seconds to fall 60 dB; 0: the sound's own
        {"level", "level", 0, 1, 1, false},               // the sampler's gain
        {"humanise", "humanise", 0, 1, 0, false},         // the neural round robin's spread (instrument.hpp)
    };
    return info[k];
}

// a pad's settings as parameter values, and one parameter's value written into the settings
float paramFromSpec(const PadSpec& p, int k);
void specFromParam(PadSpec& p, int k, float value);

}  // namespace nd
