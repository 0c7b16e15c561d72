"""The engine's graphs run by onnxruntime, from a ``neuraldrum export --format onnx`` folder. No torch import:
a host that installs ``numpy soundfile soxr onnxruntime`` and this package without its torch dependency
(``pip install --no-deps neuraldrum``) generates and encodes sounds with ``Engine(folder, backend="onnx")``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

EXPORT_FORMAT = "neuraldrum-export"  # as written by neuraldrum.export.models
EXPORT_VERSION = 1


class OnnxBackend:
    """generator.onnx + analyzer.onnx of an export folder, behind the same calls as the torch backend.

    Args:
        folder: the export folder (holding generator.onnx and analyzer.onnx).
        threads: onnxruntime intra-op threads per session (None = onnxruntime's default).
    """

    name = "onnx"

    def __init__(self, folder: Any, threads: Optional[int] = None):
        import onnxruntime as ort

        if folder is None:
            raise ValueError("backend='onnx' needs an export folder: make one with "
                             "`neuraldrum export --format onnx -o FOLDER` and pass it as the model")
        folder = Path(folder)
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
            try:
                s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own exception types
                raise ValueError(f"{path}: not a loadable ONNX model ({e})") from None
            meta = s.get_modelmeta().custom_metadata_map.get("neuraldrum")
            if meta is None:
                raise ValueError(f"{path}: no neuraldrum metadata; not made by `neuraldrum export`")
            metas[graph] = m = json.loads(meta)
            if m.get("format") != EXPORT_FORMAT or m.get("version") != EXPORT_VERSION:
                raise ValueError(f"{path}: export format {m.get('format')!r} version {m.get('version')!r} "
                                 f"is not supported (reads {EXPORT_FORMAT} {EXPORT_VERSION})")
            self.sessions[graph] = s
        if metas["generator"]["bundle_sha256"] != metas["analyzer"]["bundle_sha256"]:
            raise ValueError(f"{folder}: generator.onnx and analyzer.onnx come from different models")
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

    def generate(self, cls: np.ndarray, z: np.ndarray) -> np.ndarray:
        """cls (B,) int64, z (B, D) float32 → (B, n_samples) float32."""
        return self.sessions["generator"].run(None, {"cls": cls.astype(np.int64),
                                                     "z": np.ascontiguousarray(z, np.float32)})[0]

    def analyse(self, wave: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """wave (B, n_samples), cls (B,) int64 (−1 = predicted) → z, probs, class used."""
        z, p, used = self.sessions["analyzer"].run(None, {"wave": np.ascontiguousarray(wave, np.float32),
                                                          "cls": cls.astype(np.int64)})
        return z, p, used

    def mix(self, cls_a, cls_b, t, z) -> np.ndarray:
        raise ValueError("a morph across classes mixes log-Mels inside the generator, which the ONNX export "
                         "does not expose; use backend='torch' (within one class a morph works)")


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
