"""``neuraldrum bench``: how fast, beside the inverters a user would pick instead.

Every number comes from one run on one machine, so the ratios are what to compare across machines:

- latency of each stage for one 1 s sound at batch 1 — WAE decoder (z → log-Mel), MCNN inverter (Mel → wave),
  and ``Engine.generate`` end to end — single-threaded and with all threads: median and p95 over ``runs``
  timed calls after warm-up (fewer, and said so, when a stage would take longer than ``max_seconds``);
- throughput at batch 16 (sounds per second);
- peak resident memory of the process after loading and running the engine, model sizes, FLOPs per sound;
- the same latency for Griffin-Lim 32 and 100 iterations (librosa, from the same Mel) and for HiFi-GAN V1, V3
  and Vocos built at their published sizes with random weights (their speed does not depend on the weights),
  with each one's ratio to the MCNN.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import time
from typing import Callable, Optional

import numpy as np
import torch

from .engine import Engine


def time_calls(fn: Callable[[], object], runs: int = 100, warmup: int = 5, max_seconds: float = 30.0) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then up to ``runs`` times timed (stopping early after
    ``max_seconds`` but never before 5 timed calls). Returns median / p95 / min in ms and the number timed."""
    for _ in range(warmup):
        fn()
    t, start = [], time.perf_counter()
    while len(t) < runs and (len(t) < 5 or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1000.0)
    a = np.asarray(t)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "min_ms": float(a.min()),
            "runs": len(t)}


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call (torch's FLOP counter: matmuls and convolutions, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextlib.contextmanager
def torch_threads(n: int):
    """torch intra-op threads set to ``n`` inside the block, restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.inference_mode()
def bench(model=None, runs: int = 100, max_seconds: float = 30.0, baselines: bool = True,
          gl_iters=(32, 100), progress: bool = True) -> dict:
    """All of the module docstring's measurements. Returns '/'-keyed results."""
    from .evaluate import griffin_lim_from_mel
    from .models.baselines import BASELINES, count_params

    all_threads = os.cpu_count() or 1
    eng = Engine(model)
    b = eng.bundle
    cls = eng.classes[0]
    z = torch.as_tensor(eng.sample_prior(1, 0))
    idx = torch.zeros(1, dtype=torch.long)
    logmel = eng._decode_logmel(z, idx)
    mel = (torch.exp(logmel) - b.mel.log_floor).clamp(min=0)
    n_frames = mel.shape[-1]
    out: dict = {"bench/threads_all": all_threads, "bench/n_samples": eng.n_samples,
                 "bench/sample_rate": eng.sample_rate, "bench/torch": torch.__version__}

    def say(msg: str):
        if progress:
            print(f"bench: {msg}", flush=True)

    stages = {"decoder": lambda: eng._decode_logmel(z, idx), "inverter": lambda: b.mcnn.infer(mel),
              "generate": lambda: eng.generate(cls, z=z[0].numpy())}
    zb = eng.sample_prior(16, 1)
    for threads in sorted({1, all_threads}):
        with torch_threads(threads):
            for name, fn in stages.items():
                say(f"{name}, {threads} thread(s)")
                out[f"bench/{name}_t{threads}"] = time_calls(fn, runs, max_seconds=max_seconds)
            say(f"batch 16, {threads} thread(s)")
            t = time_calls(lambda: eng.generate_batch([cls] * 16, zb), runs=max(10, runs // 10), max_seconds=max_seconds)
            out[f"bench/throughput_b16_t{threads}_sounds_per_s"] = 16000.0 / t["median_ms"]
    out["bench/peak_rss_mb"] = peak_rss_mb()
    out["bench/params"] = {"wae_decoder": sum(p.numel() for n, p in b.wae.named_parameters() if not n.startswith("enc")),
                           "wae": count_params(b.wae), "mcnn": count_params(b.mcnn)}
    wfile = b.path / b.meta["weights"]["file"] if b.path is not None else None
    out["bench/bundle_mb"] = wfile.stat().st_size / 2 ** 20 if wfile is not None and wfile.is_file() else None
    out["bench/flops"] = {"decoder": flops(stages["decoder"]), "inverter": flops(stages["inverter"])}

    if baselines:
        x = logmel.clone()
        mcnn1 = out["bench/inverter_t1"]["median_ms"]
        for n in gl_iters:
            say(f"Griffin-Lim {n}")
            m = mel[0].numpy()
            r = time_calls(lambda: griffin_lim_from_mel(m, b.mel, n, eng.n_samples), runs, warmup=1,
                           max_seconds=max_seconds)
            r["ratio_to_mcnn_t1"] = r["median_ms"] / mcnn1
            out[f"bench/gl{n}"] = r
        for name, build in BASELINES.items():
            net = build(b.mel.n_mels).eval()
            entry = {"params": count_params(net), "flops": flops(lambda: net(x))}
            for threads in sorted({1, all_threads}):
                with torch_threads(threads):
                    say(f"{name}, {threads} thread(s)")
                    r = time_calls(lambda: net(x), runs, warmup=2, max_seconds=max_seconds)
                    mc = out[f"bench/inverter_t{threads}"]["median_ms"]
                    entry[f"t{threads}"] = {**r, "ratio_to_mcnn": r["median_ms"] / mc}
            out[f"bench/{name}"] = entry
            del net
    out["bench/n_frames"] = int(n_frames)
    return out


def format_table(r: dict) -> str:
    """A plain-text summary of :func:`bench`'s result."""
    T = r["bench/threads_all"]
    lines = [f"1 s sound ({r['bench/n_samples']} samples at {r['bench/sample_rate']} Hz); times in ms, median / p95",
             f"{'stage':28s} {'1 thread':>20s} {f'{T} threads':>20s}"]

    def cell(d):
        return f"{d['median_ms']:8.2f} / {d['p95_ms']:8.2f}" if d else "–"

    for name in ("decoder", "inverter", "generate"):
        lines.append(f"{name:28s} {cell(r.get(f'bench/{name}_t1')):>20s} {cell(r.get(f'bench/{name}_t{T}')):>20s}")
    for k, v in r.items():
        if k.startswith("bench/gl"):
            lines.append(f"{'Griffin-Lim ' + k[8:] + ' (librosa)':28s} {cell(v):>20s} {'':>20s}  ×{v['ratio_to_mcnn_t1']:.1f} MCNN")
    for name in ("hifigan_v1", "hifigan_v3", "vocos"):
        e = r.get(f"bench/{name}")
        if e:
            ratio = f"×{e['t1']['ratio_to_mcnn']:.1f} MCNN (1 thread)"
            lines.append(f"{name + ' (random weights)':28s} {cell(e['t1']):>20s} {cell(e.get(f't{T}')):>20s}  {ratio}")
    for t in sorted({1, T}):
        lines.append(f"throughput, batch 16, {t} thread(s): {r[f'bench/throughput_b16_t{t}_sounds_per_s']:.0f} sounds/s")
    lines.append(f"peak memory {r['bench/peak_rss_mb']:.0f} MB; parameters {r['bench/params']}; "
                 f"FLOPs per sound {r['bench/flops']}")
    return "\n".join(lines)


def _cmd(args: argparse.Namespace) -> int:
    r = bench(args.model, runs=args.runs, max_seconds=args.max_seconds, baselines=not args.no_baselines,
              progress=not args.json)
    if args.out:
        from .audio.io import atomic_write_text
        atomic_write_text(args.out, json.dumps(r, indent=1))
    print(json.dumps(r, indent=1) if args.json else format_table(r))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="latency, throughput, memory and FLOPs, beside Griffin-Lim, HiFi-GAN and Vocos")
    p.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    p.add_argument("--runs", type=int, default=100, help="timed calls per measurement (after warm-up)")
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="stop a measurement after this long (≥ 5 calls); the number of calls is reported")
    p.add_argument("--no-baselines", action="store_true", help="only this model's stages")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)
