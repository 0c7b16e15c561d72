// See npyrandom.hpp. The algorithms are numpy's published ones (numpy.random.SeedSequence's hash mixing, the PCG
// family's 128-bit LCG with the XSL-RR output, Marsaglia and Tsang's 256-layer ziggurat with a 52-bit mantissa);
// the ziggurat tables are computed here from their defining equations, not copied.
#include "npyrandom.hpp"

#include <cmath>

namespace nd {
namespace {

constexpr uint32_t kInitA = 0x43b0d7e5u, kMultA = 0x931e8875u, kInitB = 0x8b51f9ddu, kMultB = 0x58f38dedu;
constexpr uint32_t kMixL = 0xca01f9ddu, kMixR = 0x4973f715u;

uint32_t hashmix(uint32_t value, uint32_t& h) {
    value ^= h;
    h *= kMultA;
    value *= h;
    return value ^ (value >> 16);
}

uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t r = kMixL * x - kMixR * y;
    return r ^ (r >> 16);
}

// SeedSequence(seed).generate_state(4, uint64) as 8 little-endian 32-bit words
void seedState(uint64_t seed, uint32_t out[8]) {
    std::vector<uint32_t> entropy{uint32_t(seed)};
    if (seed >> 32) entropy.push_back(uint32_t(seed >> 32));
    uint32_t pool[4];
    uint32_t h = kInitA;
    for (int i = 0; i < 4; ++i) pool[i] = hashmix(i < int(entropy.size()) ? entropy[i] : 0u, h);
    for (int s = 0; s < 4; ++s)
        for (int d = 0; d < 4; ++d)
            if (s != d) pool[d] = mix(pool[d], hashmix(pool[s], h));
    uint32_t hb = kInitB;
    for (int i = 0; i < 8; ++i) {
        uint32_t v = pool[i % 4];
        v ^= hb;
        hb *= kMultB;
        v *= hb;
        out[i] = v ^ (v >> 16);
    }
}

const unsigned __int128 kMult = (unsigned __int128)2549297995355413924ULL << 64 | 4865540595714422341ULL;

struct Tables {
    uint64_t k[256];
    double w[256], f[256];
    Tables() {
        // layers of equal area v under exp(-x^2/2), the base strip (with the tail beyond r) being layer 0
        const double r = 3.6541528853610088, v = 0.00492867323399, m = 4503599627370496.0;  // 2^52
        double dn = r, tn = r;
        const double q = v / std::exp(-0.5 * dn * dn);
        k[0] = uint64_t((dn / q) * m);
        k[1] = 0;
        w[0] = q / m;
        w[255] = dn / m;
        f[0] = 1.0;
        f[255] = std::exp(-0.5 * dn * dn);
        for (int i = 254; i >= 1; --i) {
            dn = std::sqrt(-2.0 * std::log(v / dn + std::exp(-0.5 * dn * dn)));
            k[i + 1] = uint64_t((dn / tn) * m);
            tn = dn;
            f[i] = std::exp(-0.5 * dn * dn);
            w[i] = dn / m;
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

NumpyNormal::NumpyNormal(uint64_t seed) {
    uint32_t w[8];
    seedState(seed, w);
    uint64_t s[4];
    for (int i = 0; i < 4; ++i) s[i] = uint64_t(w[2 * i]) | uint64_t(w[2 * i + 1]) << 32;
    unsigned __int128 initstate = (unsigned __int128)s[0] << 64 | s[1];
    unsigned __int128 initseq = (unsigned __int128)s[2] << 64 | s[3];
    state_ = 0;
    inc_ = (initseq << 1) | 1;
    state_ = state_ * kMult + inc_;
    state_ += initstate;
    state_ = state_ * kMult + inc_;
    tables();
}

uint64_t NumpyNormal::nextRaw() {
    state_ = state_ * kMult + inc_;
    uint64_t hi = uint64_t(state_ >> 64), lo = uint64_t(state_);
    unsigned rot = unsigned(state_ >> 122);
    uint64_t x = hi ^ lo;
    return (x >> rot) | (x << ((64 - rot) & 63));
}

double NumpyNormal::nextDouble() { return double(nextRaw() >> 11) * (1.0 / 9007199254740992.0); }

double NumpyNormal::next() {
    const Tables& t = tables();
    const double r = 3.6541528853610088, invr = 1.0 / r;
    for (;;) {
        uint64_t bits = nextRaw();
        int idx = int(bits & 0xff);
        bits >>= 8;
        bool negative = bits & 1;
        uint64_t rabs = (bits >> 1) & 0x000fffffffffffffULL;
        double x = double(rabs) * t.w[idx];
        if (negative) x = -x;
        if (rabs < t.k[idx]) return x;
        if (idx == 0) {
            for (;;) {
                double xx = -invr * std::log1p(-nextDouble());
                double yy = -std::log1p(-nextDouble());
                if (yy + yy > xx * xx) return ((rabs >> 8) & 1) ? -(r + xx) : r + xx;
            }
        }
        if ((t.f[idx - 1] - t.f[idx]) * nextDouble() + t.f[idx] < std::exp(-0.5 * x * x)) return x;
    }
}

std::vector<double> NumpyNormal::draw(size_t n) {
    std::vector<double> out(n);
    for (auto& v : out) v = next();
    return out;
}

}  // namespace nd
