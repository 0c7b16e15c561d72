"""The engine's graphs run by onnxruntime, from a ``neuraldrum export --format onnx`` folder (by default the
packaged model's, shipped beside its bundle). No torch import: the plain install (``pip install neuraldrum``:
numpy, soundfile, soxr, onnxruntime) generates, encodes, morphs and renders in hi-fi with
``Engine(backend="onnx")`` — hi-fi and a morph across classes through the export's ``mixer`` graph and
:mod:`neuraldrum.hifi`.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .config import DEFAULT_EXPORT  # the default model's graphs, shipped beside its bundle

EXPORT_FORMAT = "neuraldrum-export"  # as written by neuraldrum.export.models
EXPORT_VERSION = 1


class OnnxBackend:
    """generator.onnx, analyzer.onnx (+ mixer.onnx) of an export folder, behind the same calls as the torch backend.

    Args:
        folder: the export folder (holding generator.onnx, analyzer.onnx and, in exports of this version,
            mixer.onnx); None: the packaged default model's; another OnnxBackend: its sessions, shared.
        threads: onnxruntime intra-op threads per session (None = onnxruntime's default).
        hifi: Griffin-Lim iterations after the inverter (numpy, :mod:`neuraldrum.hifi`); 0: the playing path.
    """

    name = "onnx"

    def __init__(self, folder: Any, threads: Optional[int] = None, hifi: int = 0):
        if isinstance(folder, OnnxBackend):  # another backend's sessions (sessions are thread-safe), in hi-fi or not
            self.sessions, self.info, self.grid, self._lazy = folder.sessions, folder.info, folder.grid, folder._lazy
            self._set_hifi(hifi)
            return
        import onnxruntime as ort

        folder = Path(folder) if folder is not None else DEFAULT_EXPORT
        if not (folder / "generator.onnx").is_file() and (folder / "bundle.json").is_file():
            raise ValueError(f"{folder}: a model bundle, which runs in PyTorch (pip install 'neuraldrum[train]'); "
                             "to play it without torch, export it: `neuraldrum export --format onnx -o FOLDER`")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        self.sessions = {}
        metas = {}
        for graph in ("generator", "analyzer"):
            path = folder / f"{graph}.onnx"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; is {folder} an ONNX export of neuraldrum?")
            self.sessions[graph], metas[graph] = _open(path, opts)
        if metas["generator"]["bundle_sha256"] != metas["analyzer"]["bundle_sha256"]:
            raise ValueError(f"{folder}: generator.onnx and analyzer.onnx come from different models")
        # the mixer (hi-fi, morphs across classes) is opened on first use: most commands never need it.
        # (exports made before the mixer graph have none: no hi-fi, no morph across classes)
        mixer = folder / "mixer.onnx"
        self._lazy = {"mixer": (mixer, opts, metas["generator"]["bundle_sha256"]) if mixer.is_file() else None,
                      "lock": threading.Lock()}
        m = metas["generator"]
        f32 = np.float32
        self.info = {
            "classes": list(m["classes"]), "sample_rate": int(m["sample_rate"]), "n_samples": int(m["n_samples"]),
            "latent_dim": int(m["latent_dim"]), "prior_temperature": float(m["prior_temperature"]),
            # how a longer sample is cut to length (exports older than this field: the 10 ms cosine of then)
            "fade_ms": float(m.get("fade_ms", 10.0)), "fade_shape": str(m.get("fade_shape", "cosine")),
            "has_classifier": bool(m["has_classifier"]), "sha256": m["bundle_sha256"], "path": str(folder),
            "configs_sha256": m.get("configs_sha256"),  # (exports older than this field: none)
            "name": m.get("bundle_name"),  # the exported bundle's folder name (older exports: none)
            "pca": {k: (np.asarray(v["mean"], f32), np.asarray(v["axes"], f32), np.asarray(v["scales"], f32))
                    for k, v in m["pca"].items()},
            "prior": _prior(m.get("prior"), len(m["classes"]), int(m["latent_dim"]), folder)}
        self.grid = m.get("hifi")  # the Mel's STFT grid, for hi-fi rendering
        self._set_hifi(hifi)

    @property
    def has_mixer(self) -> bool:
        """Whether the export has the mixer graph (hi-fi rendering, morphs across classes)."""
        return self._lazy["mixer"] is not None and self.grid is not None

    def _mixer(self):
        """The mixer graph's session, opened on first use (once, whichever thread asks first)."""
        with self._lazy["lock"]:
            if "mixer" not in self.sessions:
                path, opts, sha = self._lazy["mixer"]
                session, meta = _open(path, opts)
                if meta["bundle_sha256"] != sha:
                    raise ValueError(f"{path}: comes from another model than generator.onnx")
                self.sessions["mixer"] = session
            return self.sessions["mixer"]

    def _set_hifi(self, hifi: int) -> None:
        if hifi and not self.has_mixer:
            raise ValueError(f"{self.info['path']}: this export has no mixer graph, which hi-fi rendering needs; "
                             "export the model again with this version (`neuraldrum export --format onnx`)")
        self.hifi = int(hifi)
        if hifi:
            self._mixer()

    def generate(self, cls: np.ndarray, z: np.ndarray) -> np.ndarray:
        """cls (B,) int64, z (B, D) float32 → (B, n_samples) float32."""
        if self.hifi:
            return self.mix(cls, cls, np.zeros(len(cls), np.float32), z)
        return self.sessions["generator"].run(None, {"cls": cls.astype(np.int64),
                                                     "z": np.ascontiguousarray(z, np.float32)})[0]

    def analyse(self, wave: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """wave (B, n_samples), cls (B,) int64 (−1 = predicted) → z, probs, class used."""
        z, p, used = self.sessions["analyzer"].run(None, {"wave": np.ascontiguousarray(wave, np.float32),
                                                          "cls": cls.astype(np.int64)})
        return z, p, used

    def mix(self, cls_a: np.ndarray, cls_b: np.ndarray, t: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Decode z (B, D) with both classes, mix the log-Mels (1 − t)·a + t·b (t: (B,)), invert (in hi-fi when
        the backend is) → (B, n_samples)."""
        from .hifi import finish, griffin_lim_steps, match_level

        if not self.has_mixer:
            raise ValueError(f"{self.info['path']}: this export has no mixer graph, which a morph across classes "
                             "needs; export the model again with this version (`neuraldrum export --format onnx`)")
        wave, target = self._mixer().run(None, {
            "cls_a": cls_a.astype(np.int64), "cls_b": cls_b.astype(np.int64),
            "t": np.ascontiguousarray(t, np.float32), "z": np.ascontiguousarray(z, np.float32)})
        n, sr = self.info["n_samples"], self.info["sample_rate"]
        if not self.hifi:
            return finish(wave, n, sr)
        g = self.grid
        hifi = griffin_lim_steps(wave, target, self.hifi, int(g["n_fft"]), int(g["hop_length"]),
                                 int(g["win_length"]), float(g["momentum"]))
        return match_level(finish(hifi, n, sr), finish(wave, n, sr), sr)  # as loud as the playing path's


def _open(path: Path, opts: Any) -> tuple[Any, dict]:
    """An onnxruntime session of one exported graph and its neuraldrum metadata, checked."""
    import onnxruntime as ort

    try:
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: not a loadable ONNX model ({e})") from None
    meta = s.get_modelmeta().custom_metadata_map.get("neuraldrum")
    if meta is None:
        raise ValueError(f"{path}: no neuraldrum metadata; not made by `neuraldrum export`")
    m = json.loads(meta)
    if m.get("format") != EXPORT_FORMAT or m.get("version") != EXPORT_VERSION:
        raise ValueError(f"{path}: export format {m.get('format')!r} version {m.get('version')!r} "
                         f"is not supported (reads {EXPORT_FORMAT} {EXPORT_VERSION})")
    return s, m


def _prior(p: Any, n_classes: int, latent_dim: int, folder: Path) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The class prior recorded in the export metadata as (mean (C, D), chol (C, D, D)) float32, or None."""
    if p is None:
        return None
    try:
        mean, chol = np.asarray(p["mean"], np.float32), np.asarray(p["chol"], np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{folder}: the metadata's prior is unreadable ({e})") from None
    from .prior import check_prior

    why = "kind is not class_gaussian" if p.get("kind") != "class_gaussian" else \
        check_prior(mean, chol, n_classes, latent_dim)
    if why is not None:
        raise ValueError(f"{folder}: the metadata's prior is not a class Gaussian ({why})")
    return mean, chol
