// numpy's default_rng(seed).standard_normal, reproduced: SeedSequence → PCG64 (XSL-RR 128/64) → ziggurat normal.
// neuraldrum's seeds are numpy's (export.json, "seed"), so a pad with seed N decodes the same prior draw as
// `neuraldrum generate --seed N`. Only what that needs: one non-negative integer seed below 2**63.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nd {

class NumpyNormal {
public:
    explicit NumpyNormal(uint64_t seed);
    double next();                       // the next standard_normal() draw
    std::vector<double> draw(size_t n);  // n draws, as standard_normal(n)
    uint64_t nextRaw();                  // PCG64's next 64-bit output (bit_generator.random_raw())
private:
    double nextDouble();
    unsigned __int128 state_, inc_;
};

}  // namespace nd
