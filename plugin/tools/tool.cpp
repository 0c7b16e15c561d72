// neuraldrum-plugin-tool: the plugin's core without a host, for tests and measurements.
//   rng SEED N                 N numbers of numpy's default_rng(SEED).standard_normal, one a line
//   pads MODEL RATE [KIT] [--sample PAD FILE]...
//                              each pad's rendered sample at RATE Hz as raw float32 files pad<i>.f32, and the
//                              pads as the plugin saves them, kit.json (in the current folder); a humanised
//                              pad's takes 1.. as pad<i>_<k>.f32
//   bench MODEL                the audio callback's time per block (p50, p99 at 64 and 512 frames) and the time
//                              from a parameter change to the new sound being playable, as JSON
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "instrument.hpp"
#include "kit.hpp"
#include "npyrandom.hpp"
#include "params.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double pct(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

int bench(const std::string& folder) {
    nd::Instrument inst(folder, 48000);
    inst.waitRendered(60.0);
    std::printf("{");
    for (uint32_t frames : {64u, 512u}) {
        std::vector<float> l(frames), r(frames);
        std::vector<double> us;
        for (int b = 0; b < 20000; ++b) {
            if (b % 8 == 0)  // a busy pattern: a hit every 8 blocks, all pads in turn, many voices ringing
                inst.noteOn(inst.pad((b / 8) % nd::kPads).note, 100, frames / 2);
            const auto t0 = Clock::now();
            inst.process(l.data(), r.data(), frames);
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        std::printf("\"block%u_us\": {\"p50\": %.2f, \"p99\": %.2f, \"max\": %.2f, \"budget\": %.1f}, ", frames,
                    pct(us, 0.5), pct(us, 0.99), pct(us, 1.0), 1e6 * frames / 48000.0);
    }
    std::vector<double> ms;
    for (int k = 0; k < 20; ++k) {
        const auto t0 = Clock::now();
        inst.setParam(0, nd::kX, float(k % 2 ? 0.5 : -0.5) + 0.01f * k);
        inst.waitRendered(10.0);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::printf("\"change_to_playable_ms\": {\"p50\": %.1f, \"max\": %.1f}}\n", pct(ms, 0.5), pct(ms, 1.0));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string cmd = argc > 1 ? argv[1] : "";
    try {
        if (cmd == "rng" && argc == 4) {
            nd::NumpyNormal g(std::strtoull(argv[2], nullptr, 10));
            for (int i = 0, n = std::atoi(argv[3]); i < n; ++i) std::printf("%.17g\n", g.next());
            return 0;
        }
        if (cmd == "pads" && argc >= 4) {
            nd::Instrument inst(argv[2], std::atof(argv[3]));
            int a = 4;
            if (argc > a && std::string(argv[a]) != "--sample") {
                std::ifstream in(argv[a++]);
                std::stringstream ss;
                ss << in.rdbuf();
                inst.setPads(nd::kitFromJson(inst.model(), ss.str()), true);
            }
            for (; a + 2 < argc && std::string(argv[a]) == "--sample"; a += 3)  // --sample PAD FILE
                inst.loadSample(std::atoi(argv[a + 1]), argv[a + 2]);
            inst.waitRendered(30.0);
            std::ofstream("kit.json") << nd::kitToJson(inst.model(), inst.pads());
            for (int i = 0; i < nd::kPads; ++i) {
                std::vector<float> s = inst.padSample(i);
                std::ofstream out("pad" + std::to_string(i) + ".f32", std::ios::binary);
                out.write(reinterpret_cast<const char*>(s.data()), std::streamsize(s.size() * sizeof(float)));
                for (int k = 1; k < nd::kTakes; ++k) {  // humanised takes, where the pad has them
                    std::vector<float> t = inst.padSample(i, k);
                    if (t.empty()) continue;
                    std::ofstream(("pad" + std::to_string(i) + "_" + std::to_string(k) + ".f32").c_str(), std::ios::binary)
                        .write(reinterpret_cast<const char*>(t.data()), std::streamsize(t.size() * sizeof(float)));
                }
            }
            return 0;
        }
        if (cmd == "bench" && argc == 3) return bench(argv[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "neuraldrum-plugin-tool: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: neuraldrum-plugin-tool rng SEED N | pads MODEL RATE [KIT] [--sample PAD FILE]... | bench MODEL\n");
    return 2;
}
