"""The model bundle: everything the engine needs, in two files.

``BUNDLE/model.safetensors``  all tensors, namespaced: ``wae.*``, the inverter's (``mcnn.*`` or ``vocos.*``: its
                              config in ``configs.mcnn`` or ``configs.vocos``), ``classifier.*``, ``std.mean``,
                              ``std.std``, ``pca.<name>.{mean,components,scales}`` (name = a class or ``all``),
                              optionally ``prior.mean`` (C, D) and ``prior.chol`` (C, D, D): a Gaussian per class
``BUNDLE/bundle.json``        format + version, package version, audio/Mel/model configs, class names, the
                              sha256 of the weights, corpus summary, training commands, metrics; with the
                              per-class prior, ``"prior": {"kind": "class_gaussian", "fit": {...}}``

The optional class prior: prior draws of class c are z = mean[c] + t · ε @ chol[c]ᵀ, ε ~ N(0, I), where chol[c] is
the lower Cholesky factor of the covariance of the class's train-split latents (+ a small ridge). Without it
(older bundles) prior draws are t · ε for every class. The JSON record and both tensors come together or not at all.

A bundle is data from elsewhere: loading checks bundle.json's fields for type and range, the configs for sane
sizes and agreement, the weights file for its place (inside the folder) and checksum, then builds each model on
the meta device and gives it the file's tensors, whose names, shapes and dtypes must be exactly the model's.
Anything unknown, truncated, altered or out of range is refused with a :class:`BundleError` naming the file and
the field, before anything is allocated from it. No pickles: safetensors and JSON only (see SECURITY.md).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from . import __version__
from .prior import check_prior
from .atomic import atomic_folder, foreign_entries, some, write_text
from .audio.mel import Standardiser
from .config import AudioConfig, MCNNConfig, MelConfig, VocosConfig, WAEConfig, check_shapes, from_dict, to_dict
from .models.classifier import ClassifierConfig, DrumClassifier

FORMAT = "neuraldrum-bundle"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "bundle.json"
DEFAULT_BUNDLE = Path(__file__).parent / "assets" / "default"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")  # a class or file name: safe in any path, no separators
MAX_CLASSES = 1024
MAX_TEMPERATURE = 10.0  # prior_temperature: (0, this]
MAX_META_BYTES = 16 << 20  # bundle.json is a few kB (the default's: 32 kB)
PRIOR_KIND = "class_gaussian"
PRIOR_TENSORS = ("prior.mean", "prior.chol")
INVERTER_CONFIGS = {"mcnn": MCNNConfig, "vocos": VocosConfig}  # the inverter kinds, by their configs' key


def inverter_kind(module: torch.nn.Module) -> str:
    """"mcnn" or "vocos": the key under which an inverter's config and tensors are stored."""
    cfg = getattr(module, "cfg", None)
    for kind, cls in INVERTER_CONFIGS.items():
        if isinstance(cfg, cls):
            return kind
    raise ValueError(f"not an inverter: {type(module).__name__}")


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message says which file and why, on one line (a wrapped error's own
    line breaks, such as torch's list of missing tensors, become spaces)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


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
    inverter: torch.nn.Module  # an MCNN or a VocosInverter (``inverter_kind``)
    classifier: Optional[DrumClassifier]
    standardiser: Standardiser
    pca: dict[str, PCA] = field(default_factory=dict)
    path: Optional[Path] = None
    prior_mean: Optional[np.ndarray] = None  # (C, D) float32: the class prior's means, None = N(0, I) for all
    prior_chol: Optional[np.ndarray] = None  # (C, D, D) float32: lower Cholesky factors of the class covariances

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def inverter_kind(self) -> str:
        """"mcnn" or "vocos"."""
        return inverter_kind(self.inverter)

    @property
    def mcnn(self) -> torch.nn.Module:
        """The inverter (the name from when it was always an MCNN)."""
        return self.inverter


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_bundle_folder(out: Union[str, Path]) -> Path:
    """``out`` as a Path, if a bundle may be written there: it does not exist, or is an empty folder, or a bundle
    folder (its ``bundle.json`` says this format, and it holds nothing but that and the weights). Anything else (a
    user's folder, a training run, a file) is refused, so writing a bundle never deletes it."""
    out = Path(out)
    if not out.exists():
        return out
    if not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    entries = list(out.iterdir())
    if not entries:
        return out
    try:
        ours = json.loads((out / META).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    other = foreign_entries(out, (META, WEIGHTS).__contains__)
    if not ours or other:
        what = "a folder that is not a model bundle" if not ours else f"a bundle folder that also holds {some(other)}"
        raise FileExistsError(f"{out}: {what}; writing a bundle there would delete it: choose a new or empty folder")
    return out


def save_bundle(out: Union[str, Path], *, audio: AudioConfig, mel: MelConfig, wae: torch.nn.Module,
                standardiser: Standardiser, classes: list[str], pca: dict[str, PCA],
                inverter: Optional[torch.nn.Module] = None, mcnn: Optional[torch.nn.Module] = None,
                classifier: Optional[DrumClassifier] = None, extra: Optional[dict[str, Any]] = None,
                prior: Optional[tuple[np.ndarray, np.ndarray, dict]] = None) -> Path:
    """Write a bundle folder atomically (:func:`neuraldrum.atomic.atomic_folder`: a temp folder renamed into place).

    ``inverter`` (or, by its old name, ``mcnn``): an MCNN or a VocosInverter; its kind is read from its config.

    ``extra`` is merged into bundle.json (corpus summary, training commands, metrics, …). ``prior``: an optional
    class prior (mean (C, D), chol (C, D, D), fit record) stored as ``prior.mean``/``prior.chol`` and
    ``"prior": {"kind": "class_gaussian", "fit": fit}``.
    """
    from safetensors.torch import save_file

    out = Path(out)
    if (inverter is None) == (mcnn is None):
        raise ValueError("save_bundle: give the inverter once (inverter= or mcnn=)")
    inverter = inverter if inverter is not None else mcnn
    kind = inverter_kind(inverter)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("wae", wae), (kind, inverter), ("classifier", classifier)):
        if module is not None:
            for k, v in module.state_dict().items():
                tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    tensors["std.mean"] = standardiser.mean.detach().cpu().contiguous()
    tensors["std.std"] = standardiser.std.detach().cpu().contiguous()
    for name, p in pca.items():
        tensors[f"pca.{name}.mean"] = p.mean.float().contiguous()
        tensors[f"pca.{name}.components"] = p.components.float().contiguous()
        tensors[f"pca.{name}.scales"] = p.scales.float().contiguous()
    if prior is not None:
        mean, chol, fit = prior
        why = check_prior(mean, chol, len(classes), wae.cfg.latent_dim)
        if why is not None:
            raise ValueError(why)
        tensors["prior.mean"] = torch.from_numpy(np.ascontiguousarray(mean))
        tensors["prior.chol"] = torch.from_numpy(np.ascontiguousarray(chol))
    with atomic_folder(check_bundle_folder(out)) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
            "classes": list(classes),
            "configs": {"audio": to_dict(audio), "mel": to_dict(mel), "wae": to_dict(wae.cfg),
                        kind: to_dict(inverter.cfg),
                        "classifier": to_dict(classifier.cfg) if classifier is not None else None},
            "weights": {"file": WEIGHTS, "sha256": _sha256(tmp / WEIGHTS), "n_tensors": len(tensors)},
            "pca": sorted(pca),
        }
        meta.update(extra or {})
        if prior is not None:
            meta["prior"] = {"kind": PRIOR_KIND, "fit": dict(prior[2])}
        write_text(tmp / META, json.dumps(meta, indent=1, sort_keys=False))
    return out


def _fail(meta_path: Path, name: str, value: Any, what: str) -> BundleError:
    return BundleError(f"{meta_path}: {name} {value!r:.80} must be {what}")


def _check_meta(meta_path: Path, meta: dict) -> None:
    """The fields of bundle.json that the code trusts, checked for type and range (configs: only that each is an
    object; :func:`neuraldrum.config.from_dict` and :func:`~neuraldrum.config.check_shapes` check their fields)."""
    classes = meta.get("classes")
    if not (isinstance(classes, list) and 1 <= len(classes) <= MAX_CLASSES):
        raise _fail(meta_path, "classes", classes, f"a list of 1 to {MAX_CLASSES} class names")
    for c in classes:
        if not (isinstance(c, str) and NAME.fullmatch(c)):
            raise _fail(meta_path, "classes: name", c, "a name of letters, digits and _ . + - (at most 64, "
                        "starting with a letter or digit)")
    if len(set(classes)) != len(classes):
        raise BundleError(f"{meta_path}: classes: {sorted({c for c in classes if classes.count(c) > 1})} appear "
                          "more than once")
    weights = meta.get("weights")
    if not isinstance(weights, dict) or "sha256" not in weights:
        raise BundleError(f"{meta_path}: no weights record (file and sha256)")
    if not (isinstance(weights["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", weights["sha256"])):
        raise _fail(meta_path, "weights.sha256", weights["sha256"], "64 lowercase hexadecimal digits")
    file = weights.get("file", WEIGHTS)
    if not (isinstance(file, str) and NAME.fullmatch(file)):
        raise _fail(meta_path, "weights.file", file, "a file name inside the bundle folder")
    t = meta.get("prior_temperature", 1.0)
    if not (isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= MAX_TEMPERATURE):
        raise _fail(meta_path, "prior_temperature", t, f"a number in (0, {MAX_TEMPERATURE:g}]")
    pca = meta.get("pca", [])
    if not (isinstance(pca, list) and all(isinstance(n, str) for n in pca) and len(set(pca)) == len(pca)):
        raise _fail(meta_path, "pca", pca, "a list of distinct names")
    if "prior" in meta:
        prior = meta["prior"]
        if not (isinstance(prior, dict) and prior.get("kind") == PRIOR_KIND and isinstance(prior.get("fit"), dict)):
            raise _fail(meta_path, "prior", prior, f'an object {{"kind": "{PRIOR_KIND}", "fit": {{...}}}}')
    configs = meta.get("configs")
    if not isinstance(configs, dict):
        raise _fail(meta_path, "configs", configs, "an object")
    kinds = [k for k in INVERTER_CONFIGS if k in configs]
    if len(kinds) != 1:
        raise _fail(meta_path, "configs", sorted(configs),
                    f"objects with exactly one inverter ({' or '.join(INVERTER_CONFIGS)})")
    for name in ("audio", "mel", "wae", kinds[0], "classifier"):
        if not isinstance(configs.get(name), dict) and not (name == "classifier" and configs.get(name) is None):
            raise _fail(meta_path, f"configs.{name}", configs.get(name),
                        "an object" + (" or null" if name == "classifier" else ""))


def read_meta(path: Union[str, Path]) -> dict:
    """bundle.json of a bundle folder, checked for format, version and the type and range of every field the
    code relies on (weights not touched)."""
    path = Path(path)
    meta_path = path / META
    if not meta_path.is_file():
        raise BundleError(f"{path}: not a neuraldrum model bundle (no {META})")
    try:
        if meta_path.stat().st_size > MAX_META_BYTES:
            raise BundleError(f"{meta_path}: {meta_path.stat().st_size} bytes; a bundle.json has at most "
                              f"{MAX_META_BYTES}")
        meta = json.loads(meta_path.read_bytes())
    except OSError as e:
        raise BundleError(f"{meta_path}: unreadable ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, a 5000-digit number, deep nesting
        raise BundleError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not a neuraldrum bundle (format {meta.get('format')!r})"
                          if isinstance(meta, dict) else f"{meta_path}: not a neuraldrum bundle")
    v = meta.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION or v < 1:
        raise BundleError(f"{meta_path}: bundle format version {v!r} is not supported by neuraldrum {__version__} "
                          f"(reads versions 1..{FORMAT_VERSION}); upgrade neuraldrum")
    _check_meta(meta_path, meta)
    return meta


def _take(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def _weights_file(path: Path, meta: dict) -> Path:
    """The weights file named in bundle.json, refused unless it is a regular file inside the bundle folder
    (a symlink may point elsewhere inside it, never out)."""
    name = meta["weights"].get("file", WEIGHTS)
    wfile = path / name
    try:
        inside = wfile.resolve().is_relative_to(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise BundleError(f"{path / META}: weights.file {name!r} must be a file name inside the bundle folder "
                          f"(it leads to {wfile.resolve() if wfile.is_symlink() else wfile})")
    if not wfile.is_file():
        raise BundleError(f"{wfile}: weights file missing")
    return wfile


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` into a module built on the meta device (no memory of its own): every name, shape and
    dtype must be the module's, and the tensors read from the file become its parameters and buffers."""
    own = module.state_dict()
    for k, v in state.items():
        if k in own and (v.shape != own[k].shape or v.dtype != own[k].dtype):
            raise RuntimeError(f"{k}: {v.dtype} {tuple(v.shape)} where the model has {own[k].dtype} "
                               f"{tuple(own[k].shape)}")
    module.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
        raise RuntimeError("tensors missing from the weights")


def _dry_run(wae: torch.nn.Module, inverter: torch.nn.Module, clf: Optional[DrumClassifier], n_mels: int,
             frames: int) -> None:
    """One clip through every model built on the meta device (shapes only, no memory): layers that do not fit
    together (a stride, a padding) fail here rather than on the first sound, and each output must have the shape
    the engine expects."""
    with torch.device("meta"), torch.no_grad():
        x, cls = torch.zeros(1, n_mels, frames), torch.zeros(1, dtype=torch.long)
        y = wae.eval().decode(wae.encode(x, cls), cls)
        wave = inverter.eval().infer(y)
        logits = clf.eval()(x) if clf is not None else None
    c = inverter.cfg
    if isinstance(c, MCNNConfig):
        n = frames * c.hop_length
    else:  # (frames · r − 1) STFT hops, r = hop_length / istft_hop
        n = (frames * (c.hop_length // c.istft_hop) - 1) * c.istft_hop
    for name, got, want in (("wae decoder", y.shape, (1, n_mels, frames)), ("inverter", wave.shape, (1, n)),
                            ("classifier", None if logits is None else logits.shape,
                             None if clf is None else (1, clf.cfg.n_classes))):
        if got is not None and tuple(got) != want:
            raise ValueError(f"the {name} gives shape {tuple(got)} where {want} is needed")


def load_bundle(path: Union[str, Path, None] = None) -> Bundle:
    """Load and verify a bundle folder (the packaged default when ``path`` is None).

    In this order, so that nothing is allocated from an unchecked number: bundle.json (:func:`read_meta`),
    the configs (types, ranges, agreement, class count: :func:`~neuraldrum.config.check_shapes`), the weights
    file (inside the folder, checksum), then each model built on the meta device, run once there (shapes only),
    and given the file's tensors, whose names, shapes and dtypes must be exactly the model's.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    from .models.mcnn import MCNN
    from .models.vocos import VocosInverter
    from .models.wae import ConditionalWAE

    path = Path(path) if path is not None else DEFAULT_BUNDLE
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    meta = read_meta(path)
    meta_path = path / META
    errors = (ArithmeticError, LookupError, RuntimeError, TypeError, ValueError)
    try:
        cfgs = meta["configs"]
        audio = from_dict(AudioConfig, cfgs["audio"])
        mel = from_dict(MelConfig, cfgs["mel"])
        kind = "vocos" if "vocos" in cfgs else "mcnn"
        wae_cfg, inv_cfg = from_dict(WAEConfig, cfgs["wae"]), from_dict(INVERTER_CONFIGS[kind], cfgs[kind])
        clf_cfg = from_dict(ClassifierConfig, cfgs["classifier"]) if cfgs.get("classifier") is not None else None
    except errors as e:
        raise BundleError(f"{meta_path}: inconsistent bundle ({e.__class__.__name__}: {e})") from None
    try:
        check_shapes(audio, mel, wae_cfg, inv_cfg if kind == "mcnn" else None, clf_cfg,
                     n_classes=len(meta["classes"]), vocos=inv_cfg if kind == "vocos" else None)
    except ValueError as e:
        raise BundleError(f"{meta_path}: {e}") from None
    wfile = _weights_file(path, meta)
    try:
        data = wfile.read_bytes()  # once: the bytes checked are the bytes parsed
    except OSError as e:
        raise BundleError(f"{wfile}: unreadable weights ({e.strerror or e})") from None
    if hashlib.sha256(data).hexdigest() != meta["weights"]["sha256"]:
        raise BundleError(f"{wfile}: checksum mismatch: the weights are truncated or altered")
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError) as e:
        raise BundleError(f"{wfile}: unreadable weights ({e})") from None
    del data
    try:
        with torch.device("meta"):
            wae = ConditionalWAE(wae_cfg)
            inverter = MCNN(inv_cfg) if kind == "mcnn" else VocosInverter(inv_cfg, mel)
            clf = DrumClassifier(clf_cfg) if clf_cfg is not None else None
        frames = mel.n_frames(audio.n_samples)
        _dry_run(wae, inverter, clf, mel.n_mels, frames)
        _load_strict(wae, _take(tensors, "wae"))
        _load_strict(inverter, _take(tensors, kind))
        if clf is not None:
            _load_strict(clf, _take(tensors, "classifier"))
            clf.eval()
        for k in ("std.mean", "std.std"):
            if tuple(tensors[k].shape) != (mel.n_mels, frames):
                raise ValueError(f"{k} has shape {tuple(tensors[k].shape)}, not (n_mels, n_frames) = "
                                 f"{(mel.n_mels, frames)}")
        std = Standardiser(mel.n_mels, frames, tensors["std.mean"], tensors["std.std"])
        pca = {}
        for name in meta.get("pca", []):
            p = PCA(*(tensors[f"pca.{name}.{f}"] for f in ("mean", "components", "scales")))
            k = p.components.shape[0] if p.components.dim() == 2 else -1
            if (tuple(p.mean.shape), tuple(p.components.shape), tuple(p.scales.shape)) != (
                    (wae_cfg.latent_dim,), (k, wae_cfg.latent_dim), (k,)):
                raise ValueError(f"pca.{name}: shapes {tuple(p.mean.shape)}, {tuple(p.components.shape)}, "
                                 f"{tuple(p.scales.shape)} are not (D,), (K, D), (K,) with D = {wae_cfg.latent_dim}")
            pca[name] = p
    except errors as e:
        raise BundleError(f"{path}: inconsistent bundle ({e.__class__.__name__}: {e})") from None
    prior_mean, prior_chol = _load_prior(path, meta, tensors, wae_cfg.latent_dim)
    wae.eval()
    inverter.eval()
    return Bundle(meta, audio, mel, wae, inverter, clf, std, pca, path, prior_mean, prior_chol)


def _load_prior(path: Path, meta: dict, tensors: dict[str, torch.Tensor],
                latent_dim: int) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The class prior's (mean, chol) as numpy, or (None, None) when the bundle has none; the JSON record and
    both tensors must be present together, and the tensors must be a valid class prior (:func:`check_prior`)."""
    have = {k: k in tensors for k in PRIOR_TENSORS}
    if "prior" not in meta and not any(have.values()):
        return None, None
    if "prior" not in meta:
        raise BundleError(f"{path / META}: prior: the weights hold {', '.join(k for k, v in have.items() if v)} "
                          "but bundle.json has no prior record")
    missing = [k for k, v in have.items() if not v]
    if missing:
        raise BundleError(f"{path}: prior: bundle.json records a class prior but the weights lack "
                          f"{', '.join(missing)}")
    if any(tensors[k].dtype != torch.float32 for k in PRIOR_TENSORS):
        raise BundleError(f"{path}: prior: {', '.join(f'{k} is {tensors[k].dtype}' for k in PRIOR_TENSORS)}; "
                          "both must be float32")
    mean, chol = (tensors[k].numpy() for k in PRIOR_TENSORS)
    why = check_prior(mean, chol, len(meta["classes"]), latent_dim)
    if why is not None:
        raise BundleError(f"{path}: {why}")
    return mean, chol


def configs_sha256(meta: dict) -> str:
    """A checksum of a bundle's model configs (bundle.json ``configs``, canonical JSON). Two bundles can hold the
    same weights and play differently (an inverter's ``mel_match`` has no weights), so what was made from a bundle
    (an ONNX export in the playing engine's cache) is matched on this as well as on the weights' checksum."""
    return hashlib.sha256(json.dumps(meta.get("configs"), sort_keys=True).encode()).hexdigest()


def write_with_inverter(src: Union[str, Path, None], out: Union[str, Path], inverter: torch.nn.Module,
                        record: dict, extra: Optional[dict[str, Any]] = None) -> Path:
    """A copy of the bundle ``src`` (None = the default) in the new folder ``out``, written atomically, with its
    inverter replaced by ``inverter`` (an MCNN or a VocosInverter for the same Mel settings). The old inverter's
    tensors and config go; ``training[kind]`` becomes ``record`` (how the new one was trained) and
    ``training["inverter_replaced"]`` says what it replaced. ``extra`` replaces top-level bundle.json fields (e.g.
    re-measured ``metrics``; without it the source's metrics are dropped, since they measured the old inverter)."""
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save_file

    src = Path(src) if src is not None else DEFAULT_BUNDLE
    b = load_bundle(src)
    kind, old = inverter_kind(inverter), b.inverter_kind
    cfg = inverter.cfg
    if (cfg.n_mels, cfg.hop_length) != (b.mel.n_mels, b.mel.hop_length):
        raise ValueError(f"the inverter reads {cfg.n_mels} Mel bins at hop {cfg.hop_length}; {src} has "
                         f"{b.mel.n_mels} at hop {b.mel.hop_length}")
    tensors = {k: v for k, v in load_tensors(_weights_file(src, b.meta).read_bytes()).items()
               if not k.startswith(old + ".")}
    for k, v in inverter.state_dict().items():
        tensors[f"{kind}.{k}"] = v.detach().cpu().contiguous()
    meta = json.loads(json.dumps(b.meta))
    del meta["configs"][old]
    meta["configs"][kind] = to_dict(cfg)
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    training["inverter_replaced"] = {"kind": old, "record": training.pop(old, None),
                                     "step": training.pop(f"{old}_step", None),
                                     "source_sha256": b.meta["weights"]["sha256"]}
    training[kind] = record
    meta["training"] = training
    meta["metrics"] = {}
    with atomic_folder(check_bundle_folder(out)) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        meta["weights"] = {"file": WEIGHTS, "sha256": _sha256(tmp / WEIGHTS), "n_tensors": len(tensors)}
        meta.update(extra or {})
        write_text(tmp / META, json.dumps(meta, indent=1, sort_keys=False))
        load_bundle(tmp)  # what was written loads, before it replaces anything
    return Path(out)


def write_with_prior(src: Union[str, Path, None], out: Union[str, Path], mean: np.ndarray, chol: np.ndarray,
                     fit: dict, extra: Optional[dict[str, Any]] = None) -> Path:
    """A copy of the bundle ``src`` (None = the default) in the new folder ``out``, written atomically, with the
    class prior (mean (C, D), chol (C, D, D)) added (replacing any it had). Every other tensor is copied as it is
    and every bundle.json field kept (corpus, training, metrics, …); the weights' sha256 and tensor count are
    recomputed and ``"prior": {"kind": "class_gaussian", "fit": fit}`` is recorded. ``extra`` replaces top-level
    bundle.json fields (e.g. re-measured ``metrics``)."""
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save_file

    src = Path(src) if src is not None else DEFAULT_BUNDLE
    b = load_bundle(src)  # every check, before anything is copied
    why = check_prior(mean, chol, len(b.classes), b.wae.cfg.latent_dim)
    if why is not None:
        raise ValueError(why)
    tensors = {k: v for k, v in load_tensors(_weights_file(src, b.meta).read_bytes()).items()
               if k not in PRIOR_TENSORS}
    tensors["prior.mean"] = torch.from_numpy(np.ascontiguousarray(mean))
    tensors["prior.chol"] = torch.from_numpy(np.ascontiguousarray(chol))
    meta = json.loads(json.dumps(b.meta))
    with atomic_folder(check_bundle_folder(out)) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        meta["weights"] = {"file": WEIGHTS, "sha256": _sha256(tmp / WEIGHTS), "n_tensors": len(tensors)}
        meta.update(extra or {})
        meta["prior"] = {"kind": PRIOR_KIND, "fit": dict(fit)}
        write_text(tmp / META, json.dumps(meta, indent=1, sort_keys=False))
        load_bundle(tmp)  # what was written loads, before it replaces anything
    return Path(out)
