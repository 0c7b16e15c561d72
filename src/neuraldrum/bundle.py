"""The model bundle: everything the engine needs, in two files.

``BUNDLE/model.safetensors``  all tensors, namespaced: ``wae.*``, ``mcnn.*``, ``classifier.*``, ``std.mean``,
                              ``std.std``, ``pca.<name>.{mean,components,scales}`` (name = a class or ``all``)
``BUNDLE/bundle.json``        format + version, package version, audio/Mel/model configs, class names, the
                              sha256 of the weights, corpus summary, training commands, metrics

Loading checks the format version and the checksum, then rebuilds each model from its config and loads its
weights strictly; anything unknown, truncated or altered is refused with a :class:`BundleError`.
No pickles: safetensors and JSON only.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch

from . import __version__
from .atomic import atomic_folder, write_text
from .audio.mel import Standardiser
from .config import AudioConfig, MCNNConfig, MelConfig, WAEConfig, check_shapes, from_dict, to_dict
from .models.classifier import ClassifierConfig, DrumClassifier

FORMAT = "neuraldrum-bundle"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "bundle.json"
DEFAULT_BUNDLE = Path(__file__).parent / "assets" / "default"


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message says which file and why."""


@dataclass
class PCA:
    """Principal axes of a set of latents. mean (D,), components (K, D) orthonormal rows, scales (K,) = std."""

    mean: torch.Tensor
    components: torch.Tensor
    scales: torch.Tensor

    @classmethod
    def fit(cls, z: torch.Tensor, k: Optional[int] = None) -> "PCA":
        """PCA of latents z (N, D); keeps k axes (all by default)."""
        mean = z.mean(dim=0)
        _, s, vt = torch.linalg.svd(z - mean, full_matrices=False)
        k = k or vt.shape[0]
        scales = s[:k] / max(1.0, (z.shape[0] - 1)) ** 0.5
        return cls(mean, vt[:k].contiguous(), scales.contiguous())


@dataclass
class Bundle:
    meta: dict
    audio: AudioConfig
    mel: MelConfig
    wae: torch.nn.Module
    mcnn: torch.nn.Module
    classifier: Optional[DrumClassifier]
    standardiser: Standardiser
    pca: dict[str, PCA] = field(default_factory=dict)
    path: Optional[Path] = None

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_bundle(out: Union[str, Path], *, audio: AudioConfig, mel: MelConfig, wae: torch.nn.Module,
                mcnn: torch.nn.Module, standardiser: Standardiser, classes: list[str], pca: dict[str, PCA],
                classifier: Optional[DrumClassifier] = None, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write a bundle folder atomically (:func:`neuraldrum.atomic.atomic_folder`: a temp folder renamed into place).

    ``extra`` is merged into bundle.json (corpus summary, training commands, metrics, …).
    """
    from safetensors.torch import save_file

    out = Path(out)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("wae", wae), ("mcnn", mcnn), ("classifier", classifier)):
        if module is not None:
            for k, v in module.state_dict().items():
                tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    tensors["std.mean"] = standardiser.mean.detach().cpu().contiguous()
    tensors["std.std"] = standardiser.std.detach().cpu().contiguous()
    for name, p in pca.items():
        tensors[f"pca.{name}.mean"] = p.mean.float().contiguous()
        tensors[f"pca.{name}.components"] = p.components.float().contiguous()
        tensors[f"pca.{name}.scales"] = p.scales.float().contiguous()
    with atomic_folder(out) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
            "classes": list(classes),
            "configs": {"audio": to_dict(audio), "mel": to_dict(mel), "wae": to_dict(wae.cfg),
                        "mcnn": to_dict(mcnn.cfg),
                        "classifier": to_dict(classifier.cfg) if classifier is not None else None},
            "weights": {"file": WEIGHTS, "sha256": _sha256(tmp / WEIGHTS), "n_tensors": len(tensors)},
            "pca": sorted(pca),
        }
        meta.update(extra or {})
        write_text(tmp / META, json.dumps(meta, indent=1, sort_keys=False))
    return out


def read_meta(path: Union[str, Path]) -> dict:
    """bundle.json of a bundle folder, checked for format and version (weights not touched)."""
    path = Path(path)
    meta_path = path / META
    if not meta_path.is_file():
        raise BundleError(f"{path}: not a neuraldrum model bundle (no {META})")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not a neuraldrum bundle (format {meta.get('format')!r})"
                          if isinstance(meta, dict) else f"{meta_path}: not a neuraldrum bundle")
    v = meta.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION or v < 1:
        raise BundleError(f"{meta_path}: bundle format version {v!r} is not supported by neuraldrum {__version__} "
                          f"(reads versions 1..{FORMAT_VERSION}); upgrade neuraldrum")
    return meta


def _take(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_bundle(path: Union[str, Path, None] = None) -> Bundle:
    """Load and verify a bundle folder (the packaged default when ``path`` is None)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .models.mcnn import MCNN
    from .models.wae import ConditionalWAE

    path = Path(path) if path is not None else DEFAULT_BUNDLE
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    meta = read_meta(path)
    weights = meta.get("weights")
    if not isinstance(weights, dict):
        raise BundleError(f"{path / META}: no weights record (file and sha256)")
    wfile = path / weights.get("file", WEIGHTS)
    if not wfile.is_file():
        raise BundleError(f"{wfile}: weights file missing")
    if _sha256(wfile) != weights.get("sha256"):
        raise BundleError(f"{wfile}: checksum mismatch: the weights are truncated or altered")
    try:
        tensors = load_file(str(wfile))
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"{wfile}: unreadable weights ({e})") from None
    try:
        cfgs = meta["configs"]
        audio = from_dict(AudioConfig, cfgs["audio"])
        mel = from_dict(MelConfig, cfgs["mel"])
        wae = ConditionalWAE(from_dict(WAEConfig, cfgs["wae"]))
        mcnn = MCNN(from_dict(MCNNConfig, cfgs["mcnn"]))
        wae.load_state_dict(_take(tensors, "wae"), strict=True)
        mcnn.load_state_dict(_take(tensors, "mcnn"), strict=True)
        clf = None
        if cfgs.get("classifier"):
            clf = DrumClassifier(from_dict(ClassifierConfig, cfgs["classifier"]))
            clf.load_state_dict(_take(tensors, "classifier"), strict=True)
            clf.eval()
        std = Standardiser(mel.n_mels, tensors["std.mean"].shape[1], tensors["std.mean"], tensors["std.std"])
        pca = {name: PCA(tensors[f"pca.{name}.mean"], tensors[f"pca.{name}.components"],
                         tensors[f"pca.{name}.scales"]) for name in meta.get("pca", [])}
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise BundleError(f"{path}: inconsistent bundle ({e.__class__.__name__}: {e})") from None
    try:
        check_shapes(audio, mel, wae.cfg, mcnn.cfg, clf.cfg if clf is not None else None)
    except ValueError as e:
        raise BundleError(f"{path}: {e}") from None
    wae.eval()
    mcnn.eval()
    return Bundle(meta, audio, mel, wae, mcnn, clf, std, pca, path)
