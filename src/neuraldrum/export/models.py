"""``neuraldrum export``: the two inference graphs as files any host can run without Python.

``--format onnx`` writes ``generator.onnx``, ``analyzer.onnx`` and ``mixer.onnx`` (torch's dynamo exporter, opset
18; the analysis graph's STFT is the ONNX ``STFT`` operator; the generator's and the mixer's weights stored once,
in ``weights.bin`` beside them), run by onnxruntime — and by
``Engine(backend="onnx")``, which then never imports torch. ``--format libtorch`` writes ``generator.pt`` and
``analyzer.pt`` as TorchScript, which LibTorch's C++ API loads with ``torch::jit::load`` (see
examples/cpp). TorchScript rather than torch.export + AOTInductor: a TorchScript file is made without a C++
toolchain, in seconds, and runs on any CPU LibTorch runs on; an AOTInductor package is compiled for the
exporting machine (its compiler, its CPU's instruction set) and takes minutes to build on two cores.

Inputs and outputs (float32 / int64, batch B ≥ 1):

- generator: ``cls`` (B,) int64 class index, ``z`` (B, latent_dim) → ``wave`` (B, n_samples), peak −1 dBFS;
- analyzer: ``wave`` (B, n_samples) prepared clip (onset at sample 0, peak-normalised), ``cls`` (B,) int64 with
  −1 = "the listener's choice" → ``z`` (B, latent_dim), ``probs`` (B, n_classes), ``cls_used`` (B,).

Every file carries the same JSON (ONNX: metadata property ``neuraldrum``; TorchScript: extra file
``neuraldrum.json``), also written beside them as ``export.json``: class names, sample rate, sizes, the prior
temperature, the class prior when the bundle has one (``prior``: per class ``mean`` (C, D) and lower Cholesky
factor ``chol`` (C, D, D) as lists, z = mean[c] + t · ε @ chol[c]ᵀ; null without one), each class's PCA mean, axes and scales (so a host maps x, y, fine, range → z as
z = mean + range/2 · (x·s1·P1 + y·s2·P2 + fine·s3·P3) without Python), the package version, the bundle's
checksum and the parity measured at export. ``meta.txt`` repeats the scalars as ``key=value`` lines for hosts
without a JSON parser. The folder is written whole or not at all.
"""
from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import GRAPHS_REVISION, __version__
from ..atomic import atomic_folder, foreign_entries, some, write_text
from ..bundle import Bundle, load_bundle
from ..config import HIFI_ITERS
from ..graphs import Analyzer, Generator, Mixer, model_info

EXPORT_FORMAT = "neuraldrum-export"
EXPORT_VERSION = 1
FORMATS = {"onnx": ".onnx", "libtorch": ".pt"}
META_KEY = "neuraldrum"
PARITY_TOL = 1e-4
# the generator's and the mixer's weights (the decoder and the inverter, the same tensors in both graphs) are stored
# once, in this file beside them: each graph's initializers name their bytes in it (ONNX external data)
SHARED_WEIGHTS = "weights.bin"
SHARED_GRAPHS = ("generator", "mixer")
SHARED_MIN_BYTES = 1024  # smaller tensors stay inside their graph
SHARED_ALIGN = 64  # each tensor's offset in the file is a multiple of this
# (name, formats, input names, output names)
GRAPHS = (("generator", ("onnx", "libtorch"), ["cls", "z"], ["wave"]),
          ("analyzer", ("onnx", "libtorch"), ["wave", "cls"], ["z", "probs", "cls_used"]),
          ("mixer", ("onnx",), ["cls_a", "cls_b", "t", "z"], ["wave", "target"]))


def export_meta(bundle: Bundle) -> dict:
    """The JSON every exported file carries (see the module docstring)."""
    info = model_info(bundle)
    prior = None
    if bundle.prior_mean is not None and bundle.prior_chol is not None:
        prior = {"kind": "class_gaussian", "mean": bundle.prior_mean.tolist(), "chol": bundle.prior_chol.tolist(),
                 "sample": "eps = standard_normal((n, latent_dim)); z = mean[c] + t * eps @ chol[c]^T "
                           "(t = prior_temperature); without a prior: z = t * eps"}
    seed = ("neuraldrum's --seed N draws eps = numpy.random.default_rng(N).standard_normal((n, latent_dim)) "
            "(the same eps with or without a class prior)")
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "package_version": __version__,
        "graphs_revision": GRAPHS_REVISION,
        "bundle_sha256": info["sha256"], "configs_sha256": info["configs_sha256"],
        "bundle_name": Path(info["path"]).name if info["path"] else None,
        "classes": info["classes"], "sample_rate": info["sample_rate"],
        "n_samples": info["n_samples"], "latent_dim": info["latent_dim"],
        "fade_ms": info["fade_ms"], "fade_shape": info["fade_shape"],
        "prior_temperature": info["prior_temperature"], "has_classifier": info["has_classifier"],
        "onset_sample": 0, "output_peak_dbfs": -1.0,
        "pca": {name: {"mean": m.tolist(), "axes": a.tolist(), "scales": s.tolist()}
                for name, (m, a, s) in info["pca"].items()},
        "prior": prior,
        # what hi-fi rendering (neuraldrum.hifi) needs besides the mixer graph: the Mel's STFT grid
        "hifi": {"iters": HIFI_ITERS, "momentum": 0.99, "n_fft": int(bundle.mel.n_fft),
                 "hop_length": int(bundle.mel.hop_length), "win_length": int(bundle.mel.win_length or bundle.mel.n_fft)},
        "controls": "z = mean + range / 2 * (x * scales[0] * axes[0] + y * scales[1] * axes[1] + fine * scales[2] "
                    "* axes[2]); x, y, fine in [-1, 1]; range > 0 (2, 5, 10); a class without PCA uses 'all'",
        "seed": seed,
        "graphs": {
            "generator": {"inputs": {"cls": ["B", "int64"], "z": ["B", info["latent_dim"], "float32"]},
                          "outputs": {"wave": ["B", info["n_samples"], "float32"]},
                          "cls": f"the class's index in classes, 0 to {len(info['classes']) - 1} (the graph does "
                                 "not check it: give only those)"},
            "analyzer": {"inputs": {"wave": ["B", info["n_samples"], "float32"], "cls": ["B", "int64"]},
                         "outputs": {"z": ["B", info["latent_dim"], "float32"],
                                     "probs": ["B", len(info["classes"]), "float32"], "cls_used": ["B", "int64"]},
                         "cls": "a class index, or -1: the listener's most probable class (cls_used says which)",
                         "wave": f"prepare a sound as the corpus was (the analyzer is sensitive to level): mono at "
                                 f"sample_rate; drop what comes before the onset (the first sample within 36 dB of "
                                 f"the peak) less 16 samples, and fade those 16 in linearly from 0; cut to n_samples "
                                 f"with a fade_ms {info['fade_shape']} fade-out where cut (see fade_shape), or pad "
                                 f"with zeros; scale to a peak of 1.0 (not the generator's -1 dBFS)",
                         "fade_shape": "decay: the gain falls linearly in dB to -60 dB over the fade, times a half "
                                       "cosine (0.5 + 0.5 cos(pi u), u from 0 to 1); cosine: the half cosine alone"},
            "mixer": {"inputs": {"cls_a": ["B", "int64"], "cls_b": ["B", "int64"], "t": ["B", "float32"],
                                 "z": ["B", info["latent_dim"], "float32"]},
                      "outputs": {"wave": ["B", "M", "float32"], "target": ["B", "T", "n_fft/2+1", "float32"]},
                      "use": "ONNX only: the log-Mel (1 - t) * decode(z, cls_a) + t * decode(z, cls_b) inverted, "
                             "before the fades and the peak (a morph across classes); target: the magnitudes "
                             "hi-fi rendering's Griffin-Lim iterations aim at (see hifi)"},
        },
    }


def example_inputs(bundle: Bundle, batch: int, seed: int = 0) -> dict[str, tuple[torch.Tensor, ...]]:
    """Inputs of both graphs at ``batch``: every class in turn, prior draws, decaying noise bursts."""
    g = torch.Generator().manual_seed(seed)
    n_cls, D, N = len(bundle.classes), bundle.wae.cfg.latent_dim, bundle.audio.n_samples
    cls = torch.arange(batch) % n_cls
    z = torch.randn(batch, D, generator=g)
    t = torch.arange(N, dtype=torch.float32)
    wave = torch.randn(batch, N, generator=g) * torch.exp(-t / torch.linspace(500, 8000, batch)[:, None])
    wave = wave / wave.abs().amax(dim=1, keepdim=True)
    a_cls = torch.where(torch.arange(batch) % 2 == 0, -1, cls) if bundle.classifier is not None else cls
    t_mix = torch.rand(batch, generator=g)
    t_mix[0] = 0.0  # (hi-fi rendering runs the mixer at t = 0)
    return {"generator": (cls, z), "analyzer": (wave, a_cls), "mixer": (cls, (cls + 1) % n_cls, t_mix, z)}


@contextlib.contextmanager
def _factored_fft(module: torch.nn.Module):
    """Inside: every inverse STFT of ``module`` runs its inverse FFT as matrix products (ISTFT.factored), which
    onnxruntime runs faster than its DFT operator; afterwards as before."""
    from ..models.vocos import ISTFT

    found = [m for m in module.modules() if isinstance(m, ISTFT)]
    before = [m.factored for m in found]
    for m in found:
        m.factored = True
    try:
        yield
    finally:
        for m, f in zip(found, before):
            m.factored = f


def _onnx(module: torch.nn.Module, args: tuple, path: Path, names: tuple[list[str], list[str]], meta: dict) -> None:
    import onnx

    batch = torch.export.Dim("batch", min=1, max=4096)
    ins, outs = names
    with _factored_fft(module):
        torch.onnx.export(module, args, str(path), input_names=ins, output_names=outs, dynamo=True, optimize=True,
                          dynamic_shapes={n: {0: batch} for n in ins}, verbose=False)
    model = onnx.load(str(path))  # external weights (``.data``), if the exporter wrote any, are read in
    onnx.helper.set_model_props(model, {META_KEY: json.dumps(meta)})
    for extra in path.parent.glob(path.name + ".data"):
        extra.unlink()
    onnx.save(model, str(path))  # one self-contained file


def _share_weights(folder: Path, graphs: tuple[str, ...] = SHARED_GRAPHS) -> None:
    """Move the initializers of ``folder``'s ``graphs`` into one external-data file, ``SHARED_WEIGHTS``, each
    distinct tensor's bytes once: a tensor the mixer holds with the same bytes as the generator names the same
    offset and length. onnxruntime reads each graph's from that file (its location is relative to the graph)."""
    import hashlib

    import onnx
    from onnx.external_data_helper import set_external_data

    at: dict[str, tuple[int, int]] = {}  # sha256 of a tensor's bytes -> (offset, length) in the file
    with open(folder / SHARED_WEIGHTS, "wb") as f:
        for name in graphs:
            path = folder / f"{name}.onnx"
            model = onnx.load(str(path))
            for t in model.graph.initializer:
                if t.data_location == onnx.TensorProto.EXTERNAL or len(t.raw_data) < SHARED_MIN_BYTES:
                    continue
                key = hashlib.sha256(t.raw_data).hexdigest()
                if key not in at:
                    f.write(b"\0" * (-f.tell() % SHARED_ALIGN))
                    at[key] = (f.tell(), len(t.raw_data))
                    f.write(t.raw_data)
                offset, length = at[key]
                set_external_data(t, SHARED_WEIGHTS, offset=offset, length=length)
                t.data_location = onnx.TensorProto.EXTERNAL
                t.ClearField("raw_data")
            path.write_bytes(model.SerializeToString())


def _libtorch(module: torch.nn.Module, args: tuple, path: Path, meta: dict) -> None:
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(module, args, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"neuraldrum.json": json.dumps(meta)})


class _Outputs(torch.nn.Module):
    """The analyzer with its outputs as a plain tuple (what exporters expect)."""

    def __init__(self, analyzer: Analyzer):
        super().__init__()
        self.analyzer = analyzer

    def forward(self, wave: torch.Tensor, cls: torch.Tensor):
        z, p, used = self.analyzer(wave, cls)
        return z, p, used


def run_exported(fmt: str, path: Path, inputs: tuple[torch.Tensor, ...], names: list[str]) -> list[np.ndarray]:
    """Run one exported graph on ``inputs`` (ONNX through onnxruntime, TorchScript through torch.jit)."""
    if fmt == "onnx":
        import onnxruntime as ort

        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return list(s.run(None, {n: x.numpy() for n, x in zip(names, inputs)}))
    out = torch.jit.load(str(path))(*inputs)
    return [o.detach().numpy() for o in (out if isinstance(out, tuple) else (out,))]


def parity(fmt: str, folder: Path, bundle: Bundle, batches=(1, 16)) -> dict[str, float]:
    """Largest |exported − eager| over every output of every graph, per batch size (the generator's support
    mask is soft since ``GRAPHS_REVISION`` 2, so every sample is compared; there is no threshold to flip); the
    mixer's, relative to each output's peak when that is over 1."""
    gen = Generator(bundle)
    graphs = {"generator": gen, "analyzer": _Outputs(Analyzer(bundle))}
    if fmt == "onnx":
        graphs["mixer"] = Mixer(gen)
    names = {name: ins for name, _, ins, _ in GRAPHS}
    out = {}
    for b in batches:
        ex = example_inputs(bundle, b, seed=b)
        for name, module in graphs.items():
            with torch.inference_mode():
                ref = module(*ex[name])
            ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
            got = run_exported(fmt, folder / f"{name}{FORMATS[fmt]}", ex[name], names[name])
            # (the mixer's outputs are not normalised, magnitudes run to hundreds: compared relative to their peak)
            out[f"{name}_b{b}"] = max(float(np.max(np.abs(np.asarray(g, np.float64) - r), initial=0.0)
                                            / (max(1.0, float(np.max(np.abs(r), initial=0.0))) if name == "mixer"
                                               else 1.0)) for g, r in zip(got, ref))
    return out


def export(bundle: Any, fmt: str, out: Any, check: bool = True) -> dict:
    """Export ``bundle`` (a Bundle, a path, or None for the default) as ``fmt`` into the folder ``out``.
    Returns the metadata written (with ``parity``: max abs difference to eager torch, per graph and batch)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "export.json").is_file())):
        raise FileExistsError(f"{out}: exists and is not an export folder; choose a new or empty folder")
    if out.is_dir():  # an export folder is replaced whole: only if it holds nothing but an export's files
        other = foreign_entries(out, lambda name: name in ("export.json", "meta.txt", SHARED_WEIGHTS)
                                or name.split(".")[0] in ("generator", "analyzer", "mixer"))
        if other:
            raise FileExistsError(f"{out}: an export folder that also holds {some(other)}, which a new export would "
                                  "delete; move them, or choose a new or empty folder")
    meta = export_meta(b)
    ex = example_inputs(b, 2)
    with atomic_folder(out) as tmp:
        gen = Generator(b)
        modules = {"generator": gen, "analyzer": _Outputs(Analyzer(b)), "mixer": Mixer(gen)}
        for name, fmts, ins, outs in GRAPHS:
            if fmt not in fmts:
                continue
            module, args, names = modules[name], ex[name], (ins, outs)
            m = {**meta, "graph": name}
            path = tmp / f"{name}{FORMATS[fmt]}"
            if fmt == "onnx":
                _onnx(module, args, path, names, m)
            else:
                _libtorch(module, args, path, m)
        if fmt == "onnx":
            _share_weights(tmp)
        if check:
            meta["parity"] = parity(fmt, tmp, b)
            worst = max(meta["parity"].values())
            if worst > PARITY_TOL:
                raise ValueError(f"the {fmt} export differs from eager torch by {worst:.2e} (> {PARITY_TOL}); "
                                 "not written")
        meta["format_written"] = fmt
        # each graph file's checksum (the shipped default graphs are checked against these and the bundle's)
        meta["files"] = {f.name: _sha256(f) for f in sorted(tmp.iterdir())
                         if f.suffix == FORMATS[fmt] or f.name == SHARED_WEIGHTS}
        write_text(tmp / "export.json", json.dumps(meta, indent=1) + "\n")
        write_text(tmp / "meta.txt", "".join(f"{k}={v}\n" for k, v in (
            ("format", fmt), ("sample_rate", meta["sample_rate"]), ("n_samples", meta["n_samples"]),
            ("latent_dim", meta["latent_dim"]), ("n_classes", len(meta["classes"])),
            ("classes", ",".join(meta["classes"])), ("prior_temperature", meta["prior_temperature"]),
            ("bundle_sha256", meta["bundle_sha256"]))))
    return meta


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cmd(args: argparse.Namespace) -> int:
    import logging
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the exporter's notes on absent torchvision ops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' own chatter
        meta = export(args.model, args.format, args.out, check=not args.no_check)
    p = meta.get("parity")
    print(json.dumps({"out": args.out, "format": args.format, "parity": p}, indent=1) if args.json else
          f"{args.format} export of {len(meta['classes'])} classes in {args.out}/"
          + (f" (max |export − torch| {max(p.values()):.1e})"
             if p else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="the generator and analysis graphs as ONNX or TorchScript (LibTorch) files")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    p.add_argument("-o", "--out", required=True, help="output folder (written whole)")
    p.add_argument("--no-check", action="store_true", help="skip the parity check against eager torch")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)


def read_meta_onnx(path: Any) -> Optional[dict]:
    """The ``neuraldrum`` metadata of an exported ONNX file (None if absent)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props[META_KEY]) if META_KEY in props else None
