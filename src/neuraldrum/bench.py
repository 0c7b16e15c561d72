"""``neuraldrum bench``: how fast, beside the inverters a user would pick instead.

Every number comes from one run on one machine, so the ratios are what to compare across machines:

- latency of each stage for one 1 s sound at batch 1 — WAE decoder (z → log-Mel), MCNN inverter (Mel → wave),
  and ``Engine.generate`` end to end — single-threaded and with all threads: median and p95 over ``runs``
  timed calls after warm-up (fewer, and said so, when a stage would take longer than ``max_seconds``);
- throughput at batch 16 (sounds per second), and the time of one batch of 8 (all threads);
- the sound service under a pad drag: "control change → sound ready" median and p95 with 1 and with 8 clients,
  each sending a new position every 16 ms on its own latest-wins stream (``bench/service_c1``, ``_c8``),
  beside the batch-of-8 time (with 8 clients the floor: the worker renders every client's newest move at once);
- peak resident memory of the process after loading and running the engine, model sizes, FLOPs per sound;
- the ONNX engine (``Engine(backend="onnx")`` on an export of the same bundle): latency, peak memory of a process
  that loads it, install size of onnxruntime beside torch (``bench/onnx``);
- the same latency for Griffin-Lim 32 and 100 iterations (librosa, from the same Mel) and for HiFi-GAN V1, V3
  and Vocos built at their published sizes with random weights (their speed does not depend on the weights),
  with each one's ratio to the MCNN;
- hi-fi rendering (``Engine(hifi=True)``: Griffin-Lim iterations after the inverter) single-threaded, with its
  ratio to the playing ``generate`` and to Griffin-Lim 32 (``bench/hifi_t1``);
- with ``against`` (other bundles, e.g. the 22.05 kHz MCNN model a 44.1 kHz one replaces): the same single-thread
  latency of their inverter and of ``Engine.generate``, timed in this run, with this model's ratio to each
  (``bench/against``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from typing import Optional, Sequence

import torch

from .engine import Engine
from .timing import flops, peak_rss_mb, summarise_ms, time_calls, torch_threads
from .voice import Controls, Voice

__all__ = ["bench", "service_drag", "format_table", "time_calls", "flops", "peak_rss_mb", "torch_threads"]


def service_drag(engine: Engine, clients: int, seconds: float = 5.0, interval_ms: float = 16.0,
                 cls: Optional[str] = None, max_batch: Optional[int] = None) -> dict:
    """``clients`` threads each drag an XY pad through a :class:`~neuraldrum.service.SoundService`: a new
    position every ``interval_ms`` on its own latest-wins stream, for ``seconds``. Positions never repeat, so
    the cache never answers. Returns "control change → sound ready" (submit → future done) median / p95 / min
    over the rendered moves, and counts of moves sent, rendered, superseded, overloaded and failed, the largest
    queue seen and the mean batch size."""
    from .service import ServiceOverloaded, SoundService

    cls = cls or engine.classes[0]
    lat: list[float] = []
    lock = threading.Lock()
    counts = {"sent": 0, "overloaded": 0, "failed": 0}

    def done(t0: float):
        def cb(f):
            if f.cancelled():
                return
            with lock:
                if f.exception() is None:
                    lat.append((time.perf_counter() - t0) * 1000.0)
                else:
                    counts["failed"] += 1
        return cb

    def client(i: int, svc, stop: float):
        nxt = time.perf_counter()
        while nxt < stop:
            t = nxt + i * 1e-3
            v = Voice(cls, controls=Controls(x=math.sin(0.9 * t + i), y=math.cos(0.7 * t + 2 * i)))
            t0 = time.perf_counter()
            try:
                svc.submit(v, stream=f"client{i}").add_done_callback(done(t0))
            except ServiceOverloaded:
                with lock:
                    counts["overloaded"] += 1
            with lock:
                counts["sent"] += 1
            nxt += interval_ms / 1000.0
            time.sleep(max(0.0, nxt - time.perf_counter()))

    opts = {} if max_batch is None else {"max_batch": max_batch}
    with SoundService(engine, max_queue=max(64, 4 * clients), cache_size=0, **opts) as svc:
        stop = time.perf_counter() + seconds
        threads = [threading.Thread(target=client, args=(i, svc, stop)) for i in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        queued_at_end = svc.queued()
        deadline = time.perf_counter() + 30
        while svc.queued() and time.perf_counter() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        st = svc.stats()
    out = summarise_ms(lat) if lat else {"median_ms": None, "p95_ms": None, "min_ms": None, "runs": 0}
    out.update(clients=clients, seconds=seconds, max_batch=svc.max_batch, interval_ms=interval_ms, sent=counts["sent"],
               rendered=st["rendered"], superseded=st["superseded"], overloaded=counts["overloaded"],
               failed=counts["failed"], max_queue=st["max_queue_seen"], queued_at_end=queued_at_end,
               mean_batch=st["rendered"] / max(1, st["batches"]), mean_batch_ms=st["mean_batch_ms"])
    return out


@torch.inference_mode()
def bench(model=None, runs: int = 100, max_seconds: float = 30.0, baselines: bool = True,
          gl_iters=(32, 100), progress: bool = True, service_seconds: float = 5.0, onnx: bool = True,
          against: Sequence = ()) -> dict:
    """All of the module docstring's measurements. Returns '/'-keyed results."""
    from .models.baselines import BASELINES, count_params, griffin_lim_from_mel

    all_threads = os.cpu_count() or 1
    eng = Engine(model, device="cpu")
    others = {str(o): Engine(o, device="cpu") for o in against}  # a wrong path fails now, not after minutes
    b, g = eng.bundle, eng.generator
    cls = eng.classes[0]
    z = torch.as_tensor(eng.sample_prior(1, 0))
    idx = torch.zeros(1, dtype=torch.long)
    logmel = g.logmel(idx, z)
    mel = (torch.exp(logmel) - b.mel.log_floor).clamp(min=0)
    n_frames = mel.shape[-1]
    out: dict = {"bench/threads_all": all_threads, "bench/n_samples": eng.n_samples,
                 "bench/sample_rate": eng.sample_rate, "bench/torch": torch.__version__}

    def say(msg: str):
        if progress:
            print(f"bench: {msg}", flush=True)

    # "inverter" is the graph's inverter (an MCNN as polyphase convolutions, or the Vocos-style one); for an MCNN,
    # "inverter_convt" is the same MCNN as trained (transposed convs)
    calls = _stage_calls(eng)  # the same prior sample z and its Mel
    stages = {"decoder": lambda: g.logmel(idx, z), "inverter": calls["inverter"],
              "inverter_convt": lambda: b.inverter.infer(mel), "generate": calls["generate"]}
    if b.inverter_kind != "mcnn":
        del stages["inverter_convt"]
    out["bench/inverter_kind"] = b.inverter_kind
    zb = eng.sample_prior(16, 1)
    for threads in sorted({1, all_threads}):
        with torch_threads(threads):
            for name, fn in stages.items():
                say(f"{name}, {threads} thread(s)")
                out[f"bench/{name}_t{threads}"] = time_calls(fn, runs, max_seconds=max_seconds)
            say(f"batch 16, {threads} thread(s)")
            t = time_calls(lambda: eng.generate_batch([cls] * 16, zb), runs=max(10, runs // 10), max_seconds=max_seconds)
            out[f"bench/throughput_b16_t{threads}_sounds_per_s"] = 16000.0 / t["median_ms"]
    say(f"batch 8, {all_threads} thread(s): the floor for 8 clients")
    with torch_threads(all_threads):
        out["bench/batch8"] = time_calls(lambda: eng.generate_batch([cls] * 8, zb[:8]), runs=max(10, runs // 5),
                                         max_seconds=max_seconds)
        for clients in (1, 8):
            say(f"sound service, {clients} client(s) dragging a pad")
            r = service_drag(eng, clients, seconds=service_seconds)
            if r["p95_ms"] is not None:
                r["p95_over_batch8"] = r["p95_ms"] / out["bench/batch8"]["median_ms"]
            out[f"bench/service_c{clients}"] = r
    out["bench/peak_rss_mb"] = peak_rss_mb()
    out["bench/params"] = {"wae_decoder": sum(p.numel() for n, p in b.wae.named_parameters() if not n.startswith("enc")),
                           "wae": count_params(b.wae), b.inverter_kind: count_params(b.inverter)}
    wfile = b.path / b.meta["weights"]["file"] if b.path is not None else None
    out["bench/bundle_mb"] = wfile.stat().st_size / 2 ** 20 if wfile is not None and wfile.is_file() else None
    out["bench/flops"] = {"decoder": flops(stages["decoder"]), "inverter": flops(stages["inverter"])}

    if baselines:
        x = logmel.clone()
        mcnn1 = out["bench/inverter_t1"]["median_ms"]
        for n in gl_iters:
            say(f"Griffin-Lim {n}")
            m = mel[0].numpy()
            r = time_calls(lambda m=m, n=n: griffin_lim_from_mel(m, b.mel, n, eng.n_samples), runs, warmup=1,
                           max_seconds=max_seconds)
            r["ratio_to_mcnn_t1"] = r["median_ms"] / mcnn1
            out[f"bench/gl{n}"] = r
        for name, build in BASELINES.items():
            net = build(b.mel.n_mels).eval()
            entry = {"params": count_params(net), "flops": flops(lambda net=net: net(x))}
            for threads in sorted({1, all_threads}):
                with torch_threads(threads):
                    say(f"{name}, {threads} thread(s)")
                    r = time_calls(lambda net=net: net(x), runs, warmup=2, max_seconds=max_seconds)
                    mc = out[f"bench/inverter_t{threads}"]["median_ms"]
                    entry[f"t{threads}"] = {**r, "ratio_to_mcnn": r["median_ms"] / mc}
            out[f"bench/{name}"] = entry
            del net
    say("hi-fi rendering (Engine(hifi=True)), 1 thread")
    hi = Engine(b, device="cpu", hifi=True)
    with torch_threads(1):
        r = time_calls(lambda: hi.generate(cls, z=z[0].numpy()), runs, max_seconds=max_seconds)
    r["iters"] = hi.hifi
    r["ratio_to_generate_t1"] = r["median_ms"] / out["bench/generate_t1"]["median_ms"]
    if "bench/gl32" in out:
        r["ratio_to_gl32"] = r["median_ms"] / out["bench/gl32"]["median_ms"]
    out["bench/hifi_t1"] = r
    out["bench/n_frames"] = int(n_frames)
    if others:
        out["bench/against"] = {}
    for name, o in others.items():
        say(f"{name}, 1 thread")
        out["bench/against"][name] = _against(o, out, runs, max_seconds)
    if onnx:
        say("ONNX engine (onnxruntime) beside the torch one")
        out["bench/onnx"] = onnx_vs_torch(b, out, runs, max_seconds, all_threads)
    return out


def _stage_calls(eng: Engine) -> dict:
    """The single-sound stages timed for a bundle: its graph's inverter from one prior sample's Mel, and
    ``Engine.generate`` end to end."""
    g, b = eng.generator, eng.bundle
    z = torch.as_tensor(eng.sample_prior(1, 0))
    mel = (torch.exp(g.logmel(torch.zeros(1, dtype=torch.long), z)) - b.mel.log_floor).clamp(min=0)
    cls = eng.classes[0]
    return {"inverter": lambda: g.inverter(mel), "generate": lambda: eng.generate(cls, z=z[0].numpy())}


def _against(o: Engine, out: dict, runs: int, max_seconds: float) -> dict:
    """Another bundle's engine ``o``: its single-thread inverter and generate latency, and this model's (already
    in ``out``) ratio to each: below 1, this model is faster."""
    rec: dict = {"sample_rate": o.sample_rate, "inverter_kind": o.bundle.inverter_kind}
    with torch_threads(1):
        for name, fn in _stage_calls(o).items():
            r = time_calls(fn, runs, max_seconds=max_seconds)
            rec[f"{name}_t1"] = r
            rec[f"ratio_{name}_t1"] = out[f"bench/{name}_t1"]["median_ms"] / r["median_ms"]
    return rec


def _package_mb(name: str) -> Optional[float]:
    """Size on disk of an installed package's folder, MB (None if absent)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2 ** 20


def _process_rss_mb(code: str) -> float:
    """Peak RSS (MB) of a fresh Python process running ``code`` (which must print nothing else; Linux)."""
    import subprocess
    import sys

    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report its parent's peak
    probe = code + ("\nprint([int(x.split()[1]) / 1024 for x in open('/proc/self/status') if x.startswith('VmHWM')]"
                    "[0])")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


def onnx_vs_torch(bundle, out: dict, runs: int, max_seconds: float, all_threads: int) -> dict:
    """The same bundle exported to ONNX and run by ``Engine(backend="onnx")``: ``generate`` latency at 1 and all
    threads (ratio to torch's in this run), peak memory of a process that loads each engine and makes 10 sounds,
    and the install size of onnxruntime beside torch."""
    import importlib.util
    import tempfile

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnxscript") is None:
        return {"skipped": "onnxruntime / onnxscript not installed"}
    import logging
    import warnings

    from .export.models import export

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    r: dict = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = f"{tmp}/onnx"
        export(bundle, "onnx", folder, check=False)
        z = Engine(folder, backend="onnx", warm=False).sample_prior(1, 0)[0]
        for t in sorted({1, all_threads}):
            eng = Engine(folder, backend="onnx", threads=t)
            r[f"generate_t{t}"] = time_calls(lambda eng=eng: eng.generate(eng.classes[0], z=z), runs,
                                             max_seconds=max_seconds)
            r[f"ratio_to_torch_t{t}"] = r[f"generate_t{t}"]["median_ms"] / out[f"bench/generate_t{t}"]["median_ms"]
        make = "[e.generate(e.classes[k % 11], seed=k) for k in range(10)]"
        r["peak_rss_mb"] = _process_rss_mb(f"from neuraldrum.engine import Engine\ne = Engine({folder!r}, "
                                           f"backend='onnx')\n{make}")
        r["torch_peak_rss_mb"] = _process_rss_mb(f"from neuraldrum.engine import Engine\ne = Engine("
                                                 f"{str(bundle.path) if bundle.path else None!r})\n{make}")
    r["install_mb"] = {"onnxruntime": _package_mb("onnxruntime"), "torch": _package_mb("torch")}
    return r


def format_table(r: dict) -> str:
    """A plain-text summary of :func:`bench`'s result."""
    T = r["bench/threads_all"]
    lines = [f"1 s sound ({r['bench/n_samples']} samples at {r['bench/sample_rate']} Hz); times in ms, median / p95",
             f"{'stage':28s} {'1 thread':>20s} {f'{T} threads':>20s}"]

    def cell(d):
        return f"{d['median_ms']:8.2f} / {d['p95_ms']:8.2f}" if d else "–"

    for name in ("decoder", "inverter", "inverter_convt", "generate"):
        lines.append(f"{name:28s} {cell(r.get(f'bench/{name}_t1')):>20s} {cell(r.get(f'bench/{name}_t{T}')):>20s}")
    lines.append(f"{'batch of 8':28s} {'':>20s} {cell(r.get('bench/batch8')):>20s}")
    for c in (1, 8):
        e = r.get(f"bench/service_c{c}")
        if e and e.get("p95_ms") is not None:
            lines.append(f"{f'service, {c} client(s) dragging':28s} {'':>20s} {cell(e):>20s}  rendered {e['rendered']} "
                         f"of {e['sent']} moves, superseded {e['superseded']}, overloaded {e['overloaded']}, "
                         f"failed {e['failed']}, max queue {e['max_queue']}, mean batch {e['mean_batch']:.1f}")
    kind = {"mcnn": "MCNN", "vocos": "our Vocos-style inverter"}.get(r.get("bench/inverter_kind", "mcnn"), "inverter")
    for k, v in r.items():
        if k.startswith("bench/gl"):
            lines.append(f"{'Griffin-Lim ' + k[8:] + ' (librosa)':28s} {cell(v):>20s} {'':>20s}  "
                         f"×{v['ratio_to_mcnn_t1']:.1f} {kind}")
    for name in ("hifigan_v1", "hifigan_v3", "vocos"):
        e = r.get(f"bench/{name}")
        if e:
            ratio = f"×{e['t1']['ratio_to_mcnn']:.1f} {kind} (1 thread)"
            lines.append(f"{name + ' (random weights)':28s} {cell(e['t1']):>20s} {cell(e.get(f't{T}')):>20s}  {ratio}")
    h = r.get("bench/hifi_t1")
    if h:
        gl = f", ×{h['ratio_to_gl32']:.2f} Griffin-Lim 32" if "ratio_to_gl32" in h else ""
        lines.append(f"{'generate, hi-fi (' + str(h['iters']) + ' GL its)':28s} {cell(h):>20s} {'':>20s}  "
                     f"×{h['ratio_to_generate_t1']:.1f} generate{gl}")
    o = r.get("bench/onnx") or {}
    if "generate_t1" in o:
        lines.append(f"{'generate, ONNX engine':28s} {cell(o['generate_t1']):>20s} {cell(o.get(f'generate_t{T}')):>20s}"
                     f"  ×{o['ratio_to_torch_t1']:.2f} torch (1 thread)")
        lines.append(f"ONNX engine: peak memory {o['peak_rss_mb']:.0f} MB (torch engine {o['torch_peak_rss_mb']:.0f} MB); "
                     f"install onnxruntime {o['install_mb']['onnxruntime']:.0f} MB, torch {o['install_mb']['torch']:.0f} MB")
    for name, a in (r.get("bench/against") or {}).items():
        lines.append(f"against {name} ({a['inverter_kind']}, {a['sample_rate']} Hz), 1 thread: inverter "
                     f"{cell(a['inverter_t1'])} (this model ×{a['ratio_inverter_t1']:.2f}), generate "
                     f"{cell(a['generate_t1'])} (×{a['ratio_generate_t1']:.2f})")
    for t in sorted({1, T}):
        lines.append(f"throughput, batch 16, {t} thread(s): {r[f'bench/throughput_b16_t{t}_sounds_per_s']:.0f} sounds/s")
    lines.append(f"peak memory {r['bench/peak_rss_mb']:.0f} MB; parameters {r['bench/params']}; "
                 f"FLOPs per sound {r['bench/flops']}")
    return "\n".join(lines)


def _cmd(args: argparse.Namespace) -> int:
    r = bench(args.model, runs=args.runs, max_seconds=args.max_seconds, baselines=not args.no_baselines,
              progress=not args.json, service_seconds=args.service_seconds, onnx=not args.no_onnx,
              against=args.against)
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
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX engine comparison")
    p.add_argument("--service-seconds", type=float, default=5.0, help="how long each sound-service drag runs")
    p.add_argument("--against", action="append", default=[], metavar="BUNDLE",
                   help="also time this bundle's inverter and generate on one thread, in this run (repeatable)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)
