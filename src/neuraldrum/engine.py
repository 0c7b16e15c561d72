"""The synthesis engine: the one object that turns (class, latent, controls or a :class:`Voice`) into a drum sound.

No training code is imported here. The engine holds the two inference graphs of :mod:`neuraldrum.graphs`
(:class:`Generator`, :class:`Analyzer`), which have no mutable state, so every method may be called from many
threads at once without a lock; live use (queues, latest-wins, batching, caching) is the sound service's job
(:mod:`neuraldrum.service`). The engine warms itself up on load, so the first call is as fast as the rest.

Controls follow the paper: an XY pad over two latent axes, a "fine" knob on a third, and a range
selector that scales how far the pad reaches. Axes are the class's principal components P1, P2, P3 of
the training latents (``axes="pca"``), or two chosen latent dimensions (``axes=(i, j)``, fine on none).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .audio.io import prepare_clip, resample
from .bundle import Bundle, load_bundle
from .graphs import Analyzer, Generator
from .sampler import apply_sampler
from .voice import Controls, Voice

__all__ = ["Engine", "Encoded", "Controls", "Voice"]


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
        threads: torch intra-op threads (None leaves torch's setting). Process-wide, as in torch.
        warm: run one generation at load so the first real call is not slower than the rest.
        device: where the graphs run ("cpu", "cuda", …); None = CUDA when available, else the CPU.
    """

    def __init__(self, bundle: Union[Bundle, str, None] = None, threads: Optional[int] = None, warm: bool = True,
                 device: Union[str, torch.device, None] = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if threads is not None:
            n = os.cpu_count() or 1
            if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 4 * n:
                raise ValueError(f"threads={threads!r} must be a whole number from 1 to {4 * n} (4 × the CPU count)")
            torch.set_num_threads(threads)
        b = self.bundle
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.sample_rate = b.audio.sample_rate
        self.n_samples = b.audio.n_samples
        self.classes = b.classes
        self.latent_dim = b.wae.cfg.latent_dim
        self.temperature = float(b.meta.get("prior_temperature", 1.0))
        self.generator = Generator(b).to(self.device)
        self.analyzer = Analyzer(b).to(self.device)
        self.frontend = self.analyzer.frontend
        if warm:
            for _ in range(2):
                self.generate(self.classes[0], seed=0)

    # ------------------------------------------------------------------ helpers
    def class_index(self, cls: Union[str, int]) -> int:
        """Index of a class given by name or index; ValueError naming the choices otherwise."""
        if isinstance(cls, (int, np.integer)) and not isinstance(cls, bool):
            if not 0 <= int(cls) < len(self.classes):
                raise ValueError(f"class index {cls} out of range 0..{len(self.classes) - 1}")
            return int(cls)
        if not isinstance(cls, str) or cls not in self.classes:
            raise ValueError(f"unknown class {cls!r}; choose from {', '.join(self.classes)}")
        return self.classes.index(cls)

    def _pca(self, cls: str):
        return self.bundle.pca.get(cls) or self.bundle.pca.get("all")

    def class_centre(self, cls: Union[str, int]) -> np.ndarray:
        """The class's mean training latent (the pad's centre), (D,); zeros when the bundle has no PCA."""
        pca = self._pca(self.classes[self.class_index(cls)])
        return pca.mean.numpy().copy() if pca is not None else np.zeros(self.latent_dim, np.float32)

    def _z(self, z, name: str = "z") -> np.ndarray:
        a = np.asarray(z, dtype=np.float32)
        if a.size != self.latent_dim:
            raise ValueError(f"{name} has {a.size} values; this model's latent has {self.latent_dim}")
        a = a.reshape(self.latent_dim)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} holds NaN or infinite values")
        return a

    def controls_to_z(self, cls: Union[str, int], controls: Controls, z0: Optional[np.ndarray] = None) -> np.ndarray:
        """Latent for the controls, starting from ``z0`` (default: the class's mean latent). Returns (D,)."""
        c = controls.validate()
        name = self.classes[self.class_index(cls)]
        pca = self._pca(name)
        base = torch.as_tensor(self._z(z0, "z0") if z0 is not None else self.class_centre(name))
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

    def voice_z(self, voice: Voice) -> np.ndarray:
        """The latent a :class:`Voice` decodes: its start (z, a prior draw, or the class centre), moved by its
        controls, plus its variation. Returns (D,) float32."""
        v = voice.validate()
        self.class_index(v.cls)
        if v.z is not None:
            z = self._z(v.z, "voice z")
        elif v.seed is not None:
            z = self.sample_prior(1, v.seed, v.temperature)[0]
        else:
            z = self.class_centre(v.cls)
        if v.controls is not None:
            z = self.controls_to_z(v.cls, v.controls, z0=z)
        if v.amount:
            z = z + v.amount * np.random.default_rng(v.variation_seed).standard_normal((1, self.latent_dim))[0]
        return z.astype(np.float32)

    # ------------------------------------------------------------------ generation
    def generate_batch(self, classes: Sequence[Union[str, int]], z: np.ndarray) -> np.ndarray:
        """Decode a batch. classes: B names or indices; z: (B, D). Returns (B, n_samples) float32."""
        idx = [self.class_index(c) for c in classes]
        z = np.asarray(z, dtype=np.float32)
        if z.shape != (len(idx), self.latent_dim):
            raise ValueError(f"z has shape {z.shape}; expected ({len(idx)}, {self.latent_dim}) for {len(idx)} classes")
        if not np.all(np.isfinite(z)):
            raise ValueError("z holds NaN or infinite values")
        with torch.inference_mode():
            w = self.generator(torch.tensor(idx, dtype=torch.long, device=self.device),
                               torch.from_numpy(z).to(self.device))
        return w.cpu().numpy()

    def render(self, voices: Sequence[Voice]) -> list[np.ndarray]:
        """Make each voice's sound in one batch: (n_samples,) float32 each, or another length where the voice's
        sampler controls ask for one. Identical voices give identical sounds."""
        voices = list(voices)
        if not voices:
            return []
        z = np.stack([self.voice_z(v) for v in voices])
        waves = self.generate_batch([v.cls for v in voices], z)
        return [w if v.sampler.is_identity() else apply_sampler(w, self.sample_rate, v.sampler)
                for v, w in zip(voices, waves)]

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
            zz = self._z(z)
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
        if not 0 <= t < float("inf"):
            raise ValueError(f"temperature={temperature} must be a finite number ≥ 0")
        return (t * np.random.default_rng(seed).standard_normal((n, self.latent_dim))).astype(np.float32)

    # ------------------------------------------------------------------ analysis
    def _clip(self, audio: np.ndarray, sample_rate: Optional[int]) -> torch.Tensor:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate and sample_rate != self.sample_rate:
            x = resample(x, sample_rate, self.sample_rate)
        clip, _ = prepare_clip(x, self.n_samples, self.sample_rate)
        return torch.from_numpy(clip)[None].to(self.device)

    def _analyse(self, audio: np.ndarray, sample_rate: Optional[int], cls: Optional[Union[str, int]]):
        c = -1 if cls is None else self.class_index(cls)
        with torch.inference_mode():
            z, p, used = self.analyzer(self._clip(audio, sample_rate), torch.tensor([c], device=self.device))
        return z[0].cpu().numpy().astype(np.float32), p[0].cpu().numpy(), int(used[0])

    def classify(self, audio: np.ndarray, sample_rate: Optional[int] = None) -> dict:
        """Class probabilities of a sound, {class: p}, from the bundle's classifier."""
        if self.bundle.classifier is None:
            raise ValueError("this bundle has no classifier; pass the class explicitly")
        with torch.inference_mode():
            p = self.analyzer.probs(self.analyzer.logmel(self._clip(audio, sample_rate)))[0]
        return {c: float(v) for c, v in zip(self.classes, p.cpu())}

    def encode(self, audio: np.ndarray, sample_rate: Optional[int] = None,
               cls: Optional[Union[str, int]] = None) -> Encoded:
        """A sound → its latent. The class is predicted by the classifier unless given."""
        z, p, used = self._analyse(audio, sample_rate, cls)
        probs = {c: float(v) for c, v in zip(self.classes, p)} if self.bundle.classifier is not None else {}
        return Encoded(z, self.classes[used], probs)

    def resynth(self, audio: np.ndarray, sample_rate: Optional[int] = None,
                cls: Optional[Union[str, int]] = None) -> np.ndarray:
        """Encode then decode: the model's version of a sound. Returns (n_samples,)."""
        e = self.encode(audio, sample_rate, cls)
        return self.generate(e.cls, z=e.z)

    def variations(self, source: Union[np.ndarray, Encoded], n: int, amount: float = 0.5,
                   cls: Optional[Union[str, int]] = None, seed: Optional[int] = None,
                   sample_rate: Optional[int] = None) -> np.ndarray:
        """n sounds near a source (audio, or an :class:`Encoded`): z + amount · N(0, I). Returns (n, n_samples)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n={n!r}: ask for at least one variation")
        if not 0 <= amount < float("inf"):
            raise ValueError(f"amount={amount} must be a finite number ≥ 0")
        e = source if isinstance(source, Encoded) else self.encode(source, sample_rate, cls)
        cname = self.classes[self.class_index(cls)] if cls is not None else e.cls
        z = e.z[None] + amount * self.sample_prior(n, seed, 1.0)
        return self.generate_batch([cname] * n, z)

    def morph(self, a: Encoded, b: Encoded, steps: int) -> np.ndarray:
        """``steps`` sounds from a to b by linear latent interpolation. Across classes, each step decodes
        z_t with both classes and mixes their log-Mels with weights (1 - t, t). Returns (steps, n_samples)."""
        if steps < 2:
            raise ValueError(f"steps={steps}: a morph needs at least 2 steps")
        g, dev = self.generator, self.device
        t = torch.linspace(0, 1, steps, device=dev)[:, None]
        z = (1 - t) * torch.as_tensor(a.z, device=dev) + t * torch.as_tensor(b.z, device=dev)
        ia, ib = self.class_index(a.cls), self.class_index(b.cls)
        with torch.inference_mode():
            la = g.logmel(torch.full((steps,), ia, device=dev), z)
            if ia != ib:
                tt = t[:, :, None]
                la = (1 - tt) * la + tt * g.logmel(torch.full((steps,), ib, device=dev), z)
            return g.invert(la).cpu().numpy()
