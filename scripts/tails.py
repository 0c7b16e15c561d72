#!/usr/bin/env python3
"""What a 1 s cut loses: decay times and energy past the cut of a corpus's sounds, read at full length from the
source files its manifest names (SoundFont and DrumSynth clips have no file and are skipped).

    .venv/bin/python scripts/tails.py CORPUS [--rate 44100] [--cut 1.0] [--out docs/eval/tails.json]

Per class: the median and 90th percentile of the −60 dB decay time (the last moment a 10 ms RMS envelope is
within 60 dB of its peak, from the onset at −40 dB), the share of sounds still ringing at the cut (decay time
> cut) and above −40 dB there, and the share of a sound's energy past the cut (median, p90).
"""
import argparse
import collections
import json
import sys

import numpy as np
import soundfile as sf
import soxr


def measure(path: str, rate: int, cut: float):
    x, fs = sf.read(path, always_2d=True, dtype="float32")
    x = x.mean(axis=1)
    if fs != rate:
        x = soxr.resample(x, fs, rate)
    peak = np.abs(x).max()
    if peak <= 0:
        return None
    x = x[int(np.argmax(np.abs(x) > peak * 0.01)):]  # onset: the first sample within 40 dB of the peak
    e = x.astype(np.float64) ** 2
    w = max(1, rate // 100)
    env = np.sqrt(np.convolve(e, np.ones(w) / w, "same") + 1e-30)
    db = 20 * np.log10(env / env.max())
    above = np.flatnonzero(db > -60)
    t60 = (above[-1] + 1) / rate if len(above) else 0.0
    n = int(rate * cut)
    return t60, e[n:].sum() / e.sum(), db[n] if len(x) > n else -np.inf


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--cut", type=float, default=1.0)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = [json.loads(line) for line in open(f"{a.corpus}/manifest.jsonl")]
    per = collections.defaultdict(list)
    for r in rows:
        try:
            m = measure(r["path"], a.rate, a.cut)
        except (RuntimeError, OSError):  # not a file (SoundFont presets, renders)
            continue
        if m is not None:
            per[r["class"]].append(m)
    out = {}
    for c, v in per.items():
        t, lost, lvl = (np.array(x) for x in zip(*v))
        out[c] = {"n": len(t), "t60_median_s": float(np.median(t)), "t60_p90_s": float(np.percentile(t, 90)),
                  "ringing_at_cut": float(np.mean(t > a.cut)), "above_m40db_at_cut": float(np.mean(lvl > -40)),
                  "energy_past_cut_median": float(np.median(lost)), "energy_past_cut_p90": float(np.percentile(lost, 90))}
    res = {"corpus": a.corpus, "rate": a.rate, "cut_s": a.cut, "classes": out}
    text = json.dumps(res, indent=1)
    if a.out:
        open(a.out, "w").write(text + "\n")
    print(f"{'class':10s} {'n':>4s} {'T60 med':>8s} {'T60 p90':>8s} {'ringing':>8s} {'>-40dB':>7s} {'E past p50':>10s} {'E past p90':>10s}")
    for c, d in sorted(out.items(), key=lambda kv: -kv[1]["t60_median_s"]):
        print(f"{c:10s} {d['n']:4d} {d['t60_median_s']:7.2f}s {d['t60_p90_s']:7.2f}s {100 * d['ringing_at_cut']:7.0f}% "
              f"{100 * d['above_m40db_at_cut']:6.0f}% {100 * d['energy_past_cut_median']:9.1f}% {100 * d['energy_past_cut_p90']:9.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
