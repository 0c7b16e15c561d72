"""The synthesis engine: the one object that turns (class, latent or controls) into a drum sound.

No training code is imported here. Every public method is thread-safe (one lock around the models) and
the engine warms itself up on load, so the first call is as fast as the rest.

Controls follow the paper: an XY pad over two latent axes, a "fine" knob on a third, and a range
selector that scales how far the pad reaches. Axes are the class's principal components P1, P2, P3 of
the training latents (``axes="pca"``), or two chosen latent dimensions (``axes=(i, j)``, fine on none).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .audio.io import prepare_clip, resample
from .audio.mel import MelFrontend
from .bundle import Bundle, load_bundle

OUT_PEAK = 0.891  # -1 dBFS
FADE_IN = 16  # samples: no click at the start
FADE_OUT_MS = 10.0


@dataclass(frozen=True)
class Controls:
    """The instrument's controls. x, y, fine in [-1, 1]; range > 0 (the paper's 2, 5 or 10).

    With ``axes="pca"`` the offset from the starting point is range · (x·s1·P1 + y·s2·P2 + fine·s3·P3)/2
    where s_k is the spread of the class's latents along P_k, so range 2 reaches one standard deviation.
    With ``axes=(i, j)`` x and y move latent dimensions i and j by range · value / 2.
    """

    x: float = 0.0
    y: float = 0.0
    fine: float = 0.0
    range: float = 2.0
    axes: Union[str, tuple] = "pca"

    def validate(self) -> "Controls":
        for name in ("x", "y", "fine"):
            v = getattr(self, name)
            if not (-1.0 <= float(v) <= 1.0):
                raise ValueError(f"control {name}={v} is outside [-1, 1]")
        if not float(self.range) > 0:
            raise ValueError(f"control range={self.range} must be > 0")
        if self.axes != "pca" and not (isinstance(self.axes, (tuple, list)) and len(self.axes) == 2):
            raise ValueError(f"control axes={self.axes!r}: use 'pca' or two latent dimensions (i, j)")
        return self


@dataclass
class Encoded:
    """What :meth:`Engine.encode` returns: z (D,), the class used, class probabilities (n_classes,)."""

    z: np.ndarray
    cls: str
    probs: dict


class Engine:
    """Generate, encode, resynthesise, vary and morph drum sounds with a model bundle.

    Args:
        bundle: a loaded :class:`~neuraldrum.bundle.Bundle`, a path to one, or None for the default.
        threads: torch intra-op threads (None leaves torch's setting).
        warm: run one generation at load so the first real call is not slower than the rest.
    """

    def __init__(self, bundle: Union[Bundle, str, None] = None, threads: Optional[int] = None, warm: bool = True):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if threads:
            torch.set_num_threads(int(threads))
        b = self.bundle
        self.sample_rate = b.audio.sample_rate
        self.n_samples = b.audio.n_samples
        self.classes = b.classes
        self.latent_dim = b.wae.cfg.latent_dim
        self.temperature = float(b.meta.get("prior_temperature", 1.0))
        self.frontend = MelFrontend(b.mel)
        self._lock = threading.Lock()
        n_out = FADE_OUT_MS * self.sample_rate / 1000
        self._fade_in = torch.linspace(0, 1, FADE_IN)
        self._fade_out = torch.cos(torch.linspace(0, np.pi / 2, int(n_out))) ** 2
        if warm:
            for _ in range(2):
                self.generate(self.classes[0], seed=0)

    # ------------------------------------------------------------------ helpers
    def class_index(self, cls: Union[str, int]) -> int:
        if isinstance(cls, (int, np.integer)):
            if not 0 <= int(cls) < len(self.classes):
                raise ValueError(f"class index {cls} out of range 0..{len(self.classes) - 1}")
            return int(cls)
        if cls not in self.classes:
            raise ValueError(f"unknown class {cls!r}; choose from {', '.join(self.classes)}")
        return self.classes.index(cls)

    def _pca(self, cls: str):
        return self.bundle.pca.get(cls) or self.bundle.pca.get("all")

    def controls_to_z(self, cls: Union[str, int], controls: Controls, z0: Optional[np.ndarray] = None) -> np.ndarray:
        """Latent for the controls, starting from ``z0`` (default: the class's mean latent). Returns (D,)."""
        c = controls.validate()
        name = self.classes[self.class_index(cls)]
        pca = self._pca(name)
        base = torch.as_tensor(z0, dtype=torch.float32) if z0 is not None else (
            pca.mean.clone() if pca is not None else torch.zeros(self.latent_dim))
        if c.axes == "pca":
            if pca is None:
                raise ValueError("this bundle has no PCA axes; use axes=(i, j)")
            k = min(3, pca.components.shape[0])
            w = torch.tensor([c.x, c.y, c.fine][:k], dtype=torch.float32) * pca.scales[:k]
            return (base + 0.5 * c.range * (w @ pca.components[:k])).numpy()
        i, j = (int(a) for a in c.axes)
        for a in (i, j):
            if not 0 <= a < self.latent_dim:
                raise ValueError(f"latent dimension {a} out of range 0..{self.latent_dim - 1}")
        z = base.clone()
        z[i] += 0.5 * c.range * c.x
        z[j] += 0.5 * c.range * c.y
        return z.numpy()

    def _finish(self, wave: torch.Tensor) -> np.ndarray:
        """(B, N) raw inverter output → click-free, peak-normalised float32 (B, n_samples)."""
        wave = wave[:, : self.n_samples]
        if wave.shape[1] < self.n_samples:
            wave = torch.nn.functional.pad(wave, (0, self.n_samples - wave.shape[1]))
        wave = wave.clone()
        wave[:, :FADE_IN] *= self._fade_in
        wave[:, -self._fade_out.numel():] *= self._fade_out
        peak = wave.abs().amax(dim=1, keepdim=True).clamp(min=1e-6)
        return (wave * (OUT_PEAK / peak)).numpy().astype(np.float32)

    @torch.inference_mode()
    def _decode_logmel(self, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(B, D), (B,) → log-Mel (B, n_mels, T)."""
        return self.bundle.standardiser.inverse(self.bundle.wae.decode(z, idx))

    @torch.inference_mode()
    def _invert(self, logmel: torch.Tensor) -> np.ndarray:
        """log-Mel (B, n_mels, T) → finished audio (B, n_samples)."""
        floor = self.bundle.mel.log_floor
        mel = (torch.exp(logmel) - floor).clamp(min=0.0)
        return self._finish(self.bundle.mcnn.infer(mel))

    # ------------------------------------------------------------------ generation
    def generate_batch(self, classes: Sequence[Union[str, int]], z: np.ndarray) -> np.ndarray:
        """Decode a batch. classes: B names or indices; z: (B, D). Returns (B, n_samples) float32."""
        z_t = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(len(classes), self.latent_dim)
        idx = torch.tensor([self.class_index(c) for c in classes], dtype=torch.long)
        with self._lock:
            return self._invert(self._decode_logmel(z_t, idx))

    def generate(self, cls: Union[str, int], z: Optional[np.ndarray] = None, controls: Optional[Controls] = None,
                 seed: Optional[int] = None) -> np.ndarray:
        """One sound of class ``cls`` → (n_samples,) float32 at :attr:`sample_rate`.

        - ``z`` given: decode it (``controls``, if given too, move from it).
        - ``controls`` only: from the class's mean latent along its PCA axes (or chosen dimensions).
        - neither: a sample of the class's prior (see :meth:`sample_prior`), reproducible with ``seed``.
        """
        if controls is not None:
            zz = self.controls_to_z(cls, controls, z0=z)
        elif z is not None:
            zz = np.asarray(z, dtype=np.float32).reshape(self.latent_dim)
        else:
            zz = self.sample_prior(1, seed)[0]
        return self.generate_batch([cls], zz[None])[0]

    def prior_temperature(self, temperature: Optional[float] = None) -> float:
        """``temperature``, or the bundle's ``prior_temperature`` when None."""
        return self.temperature if temperature is None else float(temperature)

    def sample_prior(self, n: int, seed: Optional[int] = None, temperature: Optional[float] = None) -> np.ndarray:
        """(n, D) draws from the prior N(0, t²·I), t = :meth:`prior_temperature` (1 unless the bundle chose a
        lower one: nearer the class centre, more recognisable, less varied)."""
        t = self.prior_temperature(temperature)
        if not t >= 0:
            raise ValueError(f"temperature={temperature} must be ≥ 0")
        return (t * np.random.default_rng(seed).standard_normal((n, self.latent_dim))).astype(np.float32)

    # ------------------------------------------------------------------ analysis
    def _clip(self, audio: np.ndarray, sample_rate: Optional[int]) -> torch.Tensor:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate and sample_rate != self.sample_rate:
            x = resample(x, sample_rate, self.sample_rate)
        clip, _ = prepare_clip(x, self.n_samples, self.sample_rate)
        return torch.from_numpy(clip)[None]

    def classify(self, audio: np.ndarray, sample_rate: Optional[int] = None) -> dict:
        """Class probabilities of a sound, {class: p}, from the bundle's classifier."""
        clf = self.bundle.classifier
        if clf is None:
            raise ValueError("this bundle has no classifier; pass the class explicitly")
        with self._lock, torch.inference_mode():
            p = torch.softmax(clf(self.frontend(self._clip(audio, sample_rate))), dim=1)[0]
        return {c: float(v) for c, v in zip(self.classes, p)}

    def encode(self, audio: np.ndarray, sample_rate: Optional[int] = None,
               cls: Optional[Union[str, int]] = None) -> Encoded:
        """A sound → its latent. The class is predicted by the classifier unless given."""
        probs = self.classify(audio, sample_rate) if self.bundle.classifier is not None else {}
        if cls is None:
            if not probs:
                raise ValueError("this bundle has no classifier; pass the class explicitly")
            cls = max(probs, key=probs.get)
        idx = self.class_index(cls)
        with self._lock, torch.inference_mode():
            x = self.bundle.standardiser(self.frontend(self._clip(audio, sample_rate)))
            z = self.bundle.wae.encode(x, torch.tensor([idx]))[0]
        return Encoded(z.numpy().astype(np.float32), self.classes[idx], probs)

    def resynth(self, audio: np.ndarray, sample_rate: Optional[int] = None,
                cls: Optional[Union[str, int]] = None) -> np.ndarray:
        """Encode then decode: the model's version of a sound. Returns (n_samples,)."""
        e = self.encode(audio, sample_rate, cls)
        return self.generate(e.cls, z=e.z)

    def variations(self, source: Union[np.ndarray, Encoded], n: int, amount: float = 0.5,
                   cls: Optional[Union[str, int]] = None, seed: Optional[int] = None,
                   sample_rate: Optional[int] = None) -> np.ndarray:
        """n sounds near a source (audio, or an :class:`Encoded`): z + amount · N(0, I). Returns (n, n_samples)."""
        if n < 1:
            raise ValueError(f"n={n}: ask for at least one variation")
        if amount < 0:
            raise ValueError(f"amount={amount} must be ≥ 0")
        e = source if isinstance(source, Encoded) else self.encode(source, sample_rate, cls)
        cname = self.classes[self.class_index(cls)] if cls is not None else e.cls
        z = e.z[None] + amount * self.sample_prior(n, seed, 1.0)
        return self.generate_batch([cname] * n, z)

    def morph(self, a: Encoded, b: Encoded, steps: int) -> np.ndarray:
        """``steps`` sounds from a to b by linear latent interpolation. Across classes, each step decodes
        z_t with both classes and mixes their log-Mels with weights (1 - t, t). Returns (steps, n_samples)."""
        if steps < 2:
            raise ValueError(f"steps={steps}: a morph needs at least 2 steps")
        t = torch.linspace(0, 1, steps)[:, None]
        z = (1 - t) * torch.as_tensor(a.z) + t * torch.as_tensor(b.z)
        ia, ib = self.class_index(a.cls), self.class_index(b.cls)
        with self._lock:
            la = self._decode_logmel(z, torch.full((steps,), ia))
            if ia == ib:
                return self._invert(la)
            lb = self._decode_logmel(z, torch.full((steps,), ib))
            tt = t[:, :, None]
            return self._invert((1 - tt) * la + tt * lb)
