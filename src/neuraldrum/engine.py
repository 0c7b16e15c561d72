"""The synthesis engine: the one object that turns (class, latent, controls or a :class:`Voice`) into a drum sound.

No training code is imported here, and no torch either: the engine's own logic (controls, voices, prior draws,
clip preparation, sampler controls) is numpy, and the two inference graphs run in a backend —
``backend="torch"`` (:class:`neuraldrum.graphs.TorchBackend`: a model bundle, eager PyTorch) or
``backend="onnx"`` (:class:`neuraldrum.onnx_backend.OnnxBackend`: a ``neuraldrum export`` folder run by
onnxruntime, in a process that never imports torch). The graphs have no mutable state, so every method may be
called from many threads at once without a lock; live use (queues, latest-wins, batching, caching) is the sound
service's job (:mod:`neuraldrum.service`). The engine warms itself up on load, so the first call is as fast as
the rest.

Controls follow the paper: an XY pad over two latent axes, a "fine" knob on a third, and a range
selector that scales how far the pad reaches. Axes are the class's principal components P1, P2, P3 of
the training latents (``axes="pca"``), or two chosen latent dimensions (``axes=(i, j)``, fine on none).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from .audio.io import check_mix, check_signal, load, prepare_clip, resample
from .config import HIFI_ITERS  # hi-fi rendering's Griffin-Lim iterations
from .sampler import apply_sampler
from .voice import Controls, Voice

__all__ = ["Engine", "Encoded", "Controls", "Voice", "BACKENDS"]
BACKENDS = ("torch", "onnx")
QUALITIES = ("live", "hifi")  # what a live front end's request may ask for: the playing path, or hi-fi


@dataclass
class Encoded:
    """What :meth:`Engine.encode` returns: z (D,), the class used, class probabilities (n_classes,)."""

    z: np.ndarray
    cls: str
    probs: dict


class Engine:
    """Generate, encode, resynthesise, vary and morph drum sounds with a model bundle.

    Args:
        bundle: torch backend: a loaded :class:`~neuraldrum.bundle.Bundle`, a path to one, or None for the
            default. ONNX backend: a folder written by ``neuraldrum export --format onnx``, or None for the default
            model's graphs shipped in the package.
        threads: intra-op threads (None leaves the backend's default). For torch this is process-wide.
        warm: run one generation at load so the first real call is not slower than the rest.
        device: torch backend only: where the graphs run ("cpu", "cuda", …); None = CUDA when available.
        backend: "torch", "onnx", or "auto" (:func:`auto_backend`: an export folder, or the default model without
            torch installed, runs with onnxruntime; a bundle with torch).
        hifi: render in hi-fi, with :data:`HIFI_ITERS` fast Griffin-Lim iterations started from the inverter's
            output (True), or this many (an int); off (False, 0) for playing. Each iteration costs about 0.8 ms a
            1 s sound on one thread (torch; numpy's about the same); the README's inversion table has what they buy.
    """

    def __init__(self, bundle: Any = None, threads: Optional[int] = None, warm: bool = True,
                 device: Any = None, backend: str = "auto", hifi: Union[bool, int] = False):
        if threads is not None:
            import os

            n = os.cpu_count() or 1
            if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 4 * n:
                raise ValueError(f"threads={threads!r} must be a whole number from 1 to {4 * n} (4 × the CPU count)")
        iters = HIFI_ITERS if hifi is True else (0 if hifi is False else hifi)
        if backend == "auto":
            backend = auto_backend(bundle)
        if backend == "torch":
            if not have_torch():
                raise ValueError(f"{'the default model' if bundle is None else bundle}: a model bundle runs in "
                                 f"PyTorch ({TRAIN_EXTRA}); without it, play the default model or an ONNX export "
                                 "(backend='onnx')")
            from .graphs import TorchBackend

            self.backend = TorchBackend(bundle, threads=threads, device=device, hifi=iters)
        elif backend == "onnx":
            from .config import gl_iters_ok, MAX_GL_ITERS
            from .onnx_backend import OnnxBackend

            if not gl_iters_ok(iters):
                raise ValueError(f"hifi={hifi!r}: use a whole number of iterations from 0 to {MAX_GL_ITERS}")
            self.backend = OnnxBackend(bundle, threads=threads, hifi=iters)
        else:
            raise ValueError(f"backend={backend!r}: choose from auto, {', '.join(BACKENDS)}")
        info = self.backend.info
        self.hifi: int = iters  # Griffin-Lim iterations after the inverter (0: the playing path)
        self.sample_rate: int = info["sample_rate"]
        self.n_samples: int = info["n_samples"]
        # how a longer sample is cut to length (a backend that does not say: the 10 ms cosine of the first models)
        self.fade: tuple[float, str] = (float(info.get("fade_ms", 10.0)), str(info.get("fade_shape", "cosine")))
        self.classes: list[str] = list(info["classes"])
        self.latent_dim: int = info["latent_dim"]
        self.temperature: float = float(info["prior_temperature"])
        self.has_classifier: bool = info["has_classifier"]
        self.model_sha256: str = info["sha256"]
        self.model_configs_sha256: Optional[str] = info.get("configs_sha256")  # bundle.configs_sha256
        self.model_path: Optional[str] = info["path"]
        # what to call the model: the bundle's folder name, also when it runs from an ONNX export of it
        self.model_name: str = str(info.get("name") or Path(str(info["path"])).name)
        self.pca: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = info["pca"]  # mean, axes (K, D), scales
        # the bundle's class prior: (mean (C, D), chol (C, D, D)) float32, or None (N(0, t²·I) for every class)
        self.prior: Optional[tuple[np.ndarray, np.ndarray]] = _class_prior(self.backend)
        if warm:
            for _ in range(2):
                self.generate(self.classes[0], seed=0)

    def __getattr__(self, name: str):
        # the torch backend's objects (bundle, graphs, Mel front end), for evaluation and benchmarks
        if name in ("bundle", "generator", "analyzer", "frontend", "device"):
            backend = self.__dict__.get("backend")
            if backend is not None and hasattr(backend, name):
                return getattr(backend, name)
            raise AttributeError(f"Engine.{name} exists only with backend='torch'")
        raise AttributeError(name)

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
        return self.pca.get(cls) or self.pca.get("all")

    def class_centre(self, cls: Union[str, int]) -> np.ndarray:
        """The class's mean training latent (the pad's centre), (D,); zeros when the bundle has no PCA."""
        pca = self._pca(self.classes[self.class_index(cls)])
        return pca[0].copy() if pca is not None else np.zeros(self.latent_dim, np.float32)

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
        base = self._z(z0, "z0") if z0 is not None else self.class_centre(name)
        if c.axes == "pca":
            if pca is None:
                raise ValueError("this bundle has no PCA axes; use axes=(i, j)")
            _, axes, scales = pca
            k = min(3, axes.shape[0])
            w = np.asarray([c.x, c.y, c.fine][:k], dtype=np.float32) * scales[:k]
            return (base + np.float32(0.5 * c.range) * (w @ axes[:k])).astype(np.float32)
        i, j = (int(a) for a in c.axes)
        for a in (i, j):
            if not 0 <= a < self.latent_dim:
                raise ValueError(f"latent dimension {a} out of range 0..{self.latent_dim - 1}")
        z = base.copy()
        z[i] += 0.5 * c.range * c.x
        z[j] += 0.5 * c.range * c.y
        return z

    def voice_z(self, voice: Voice) -> np.ndarray:
        """The latent a :class:`Voice` decodes: its start (z, a prior draw, or the class centre), moved by its
        controls, plus its variation. Returns (D,) float32."""
        v = voice.validate()
        self.class_index(v.cls)
        if v.z is not None:
            z = self._z(v.z, "voice z")
        elif v.seed is not None:
            z = self.sample_prior(1, v.seed, v.temperature, cls=v.cls)[0]
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
        return self.backend.generate(np.asarray(idx, dtype=np.int64), z)

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
            zz = self.sample_prior(1, seed, cls=cls)[0]
        return self.generate_batch([cls], zz[None])[0]

    def prior_temperature(self, temperature: Optional[float] = None) -> float:
        """``temperature``, or the bundle's ``prior_temperature`` when None."""
        return self.temperature if temperature is None else float(temperature)

    def sample_prior(self, n: int, seed: Optional[int] = None, temperature: Optional[float] = None,
                     cls: Optional[Union[str, int]] = None) -> np.ndarray:
        """(n, D) prior draws, t = :meth:`prior_temperature` (1 unless the bundle chose a lower one: nearer the
        class centre, more recognisable, less varied), ε = ``default_rng(seed).standard_normal((n, D))``.

        With a class ``cls`` and a bundle that has a class prior: z = mean_c + t · ε @ chol_cᵀ, i.e.
        N(mean_c, t²·Σ_c) with the class's train-latent mean and covariance. Otherwise (``cls`` None, or an older
        bundle without one): z = t · ε, i.e. N(0, t²·I). The same seed gives the same ε either way."""
        t = self.prior_temperature(temperature)
        if not 0 <= t < float("inf"):
            raise ValueError(f"temperature={temperature} must be a finite number ≥ 0")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed={seed!r} must be a whole number ≥ 0 (or None for a random draw)")
        eps = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        if cls is None or self.prior is None:
            return (t * eps).astype(np.float32)
        i = self.class_index(cls)
        mean, chol = self.prior
        return (mean[i].astype(np.float64) + t * (eps @ chol[i].astype(np.float64).T)).astype(np.float32)

    # ------------------------------------------------------------------ analysis
    MAX_SECONDS = 60.0  # longer input is refused: the engine reads only its first second anyway
    RATES = (1000, 768000)  # sample rates accepted for arrays

    def _clip(self, audio: Any, sample_rate: Optional[int]) -> np.ndarray:
        """Any sound → the corpus recipe (onset-aligned, fitted, peak-normalised), (1, n_samples) float32.

        ``audio``: a file path (read with :func:`neuraldrum.audio.io.load`), or an array: (N,) mono, or
        channels-first (C, N) / channels-last (N, C) with C ≤ 8 (mixed to mono). Integer arrays are scaled from
        their full range (uint8 is centred on 128). ``sample_rate``: the array's rate, None = the model's."""
        if isinstance(audio, (str, Path)):
            return prepare_clip(load(audio, self.sample_rate, self.MAX_SECONDS), self.n_samples,
                                self.sample_rate, self.fade[0], name=audio, fade_shape=self.fade[1])[0][None]
        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
                                        or not self.RATES[0] <= sample_rate <= self.RATES[1]):
            raise ValueError(f"sample_rate={sample_rate!r} must be a whole number of Hz from {self.RATES[0]} to "
                             f"{self.RATES[1]}")
        rate = int(sample_rate or self.sample_rate)
        x = np.asarray(audio)
        if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"audio must be numbers (a float or integer array) or a file path, not {x.dtype}")
        axis = (0 if x.shape[0] <= 8 and x.shape[0] < x.shape[1] else 1) if x.ndim == 2 and min(x.shape) <= 8 else None
        if x.ndim != 1 and axis is None:
            raise ValueError(f"audio has shape {x.shape}: give (N,) mono, (C, N) or (N, C) with at most 8 channels")
        n = x.size if axis is None else x.shape[1 - axis]
        if n > self.MAX_SECONDS * rate:  # before any copy: a huge array is refused without converting it
            raise ValueError(f"audio is {n / rate:.1f} s long at {rate} Hz; the engine takes at most "
                             f"{self.MAX_SECONDS:g} s")
        if np.issubdtype(x.dtype, np.unsignedinteger):
            half = float(np.iinfo(x.dtype).max + 1) / 2
            x = (x.astype(np.float64) - half) / half
        elif np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float64) / float(-np.iinfo(x.dtype).min)
        if axis is not None:
            peaks = np.max(np.abs(x), axis=1 - axis) if n else np.zeros(0)
            x = x.mean(axis=axis)
            check_mix(x, peaks)  # anti-phase channels: said as such, as for a file, not "silent"
        x = x.astype(np.float32)
        if rate != self.sample_rate:
            check_signal(x)
            x = resample(x, rate, self.sample_rate)
        clip, _ = prepare_clip(x, self.n_samples, self.sample_rate, self.fade[0], fade_shape=self.fade[1])
        return clip[None]

    def _analyse(self, audio: np.ndarray, sample_rate: Optional[int], cls: Optional[Union[str, int]]):
        if cls is None and not self.has_classifier:
            raise ValueError("this model has no classifier; pass the class explicitly")
        c = -1 if cls is None else self.class_index(cls)
        z, p, used = self.backend.analyse(self._clip(audio, sample_rate), np.asarray([c], dtype=np.int64))
        return z[0].astype(np.float32), p[0], int(used[0])

    def classify(self, audio: np.ndarray, sample_rate: Optional[int] = None) -> dict:
        """Class probabilities of a sound, {class: p}, from the model's classifier."""
        if not self.has_classifier:
            raise ValueError("this model has no classifier; pass the class explicitly")
        p = self._analyse(audio, sample_rate, None)[1]
        return {c: float(v) for c, v in zip(self.classes, p)}

    def encode(self, audio: np.ndarray, sample_rate: Optional[int] = None,
               cls: Optional[Union[str, int]] = None) -> Encoded:
        """A sound → its latent. The class is predicted by the classifier unless given."""
        z, p, used = self._analyse(audio, sample_rate, cls)
        probs = {c: float(v) for c, v in zip(self.classes, p)} if self.has_classifier else {}
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
        return np.concatenate(list(self.iter_variations(source, n, amount, cls, seed, sample_rate, chunk=n)))

    def iter_variations(self, source: Union[np.ndarray, Encoded], n: int, amount: float = 0.5,
                        cls: Optional[Union[str, int]] = None, seed: Optional[int] = None,
                        sample_rate: Optional[int] = None, chunk: int = 64) -> Iterator[np.ndarray]:
        """:meth:`variations`, rendered ``chunk`` at a time: yields (≤ chunk, n_samples) arrays, the same sounds
        (memory stays flat however large ``n`` is)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n={n!r}: ask for at least one variation")
        if not 0 <= amount < float("inf"):
            raise ValueError(f"amount={amount} must be a finite number ≥ 0")
        e = source if isinstance(source, Encoded) else self.encode(source, sample_rate, cls)
        cname = self.classes[self.class_index(cls)] if cls is not None else e.cls
        z = e.z[None] + amount * self.sample_prior(n, seed, 1.0)
        for i in range(0, n, chunk):
            yield self.generate_batch([cname] * len(z[i:i + chunk]), z[i:i + chunk])

    def morph(self, a: Encoded, b: Encoded, steps: int) -> np.ndarray:
        """``steps`` sounds from a to b by linear latent interpolation. Across classes, each step decodes
        z_t with both classes and mixes their log-Mels with weights (1 - t, t). Returns (steps, n_samples)."""
        return np.concatenate(list(self.iter_morph(a, b, steps, chunk=steps)))

    def iter_morph(self, a: Encoded, b: Encoded, steps: int, chunk: int = 64) -> Iterator[np.ndarray]:
        """:meth:`morph`, rendered ``chunk`` steps at a time: yields (≤ chunk, n_samples) arrays."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps={steps}: a morph needs at least 2 steps")
        t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        z = ((1 - t) * np.asarray(a.z, np.float32) + t * np.asarray(b.z, np.float32)).astype(np.float32)
        ia, ib = self.class_index(a.cls), self.class_index(b.cls)
        for i in range(0, steps, chunk):
            zc, m = z[i:i + chunk], len(z[i:i + chunk])
            if ia == ib:
                yield self.generate_batch([ia] * m, zc)
            else:
                yield self.backend.mix(np.full(m, ia, np.int64), np.full(m, ib, np.int64), t[i:i + chunk, 0], zc)


TRAIN_EXTRA = "pip install 'neuraldrum[train]'"


def have_torch() -> bool:
    """Whether PyTorch can be imported (looked up, not imported: that takes a second)."""
    import importlib.util
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    return importlib.util.find_spec("torch") is not None


def auto_backend(model: Any) -> str:
    """The backend ``backend="auto"`` picks for ``model``: "onnx" for an export folder (or a model bundle's
    name without torch installed: its refusal says what to install), and for the default model (None) when
    torch is not installed; "torch" otherwise."""
    if model is not None and not hasattr(model, "meta") and (Path(model) / "generator.onnx").is_file():
        return "onnx"
    return "torch" if have_torch() else "onnx"


def _class_prior(backend: Any) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The class prior of a backend: its info's ``prior`` (ONNX: from the export metadata), else its bundle's
    ``prior_mean``/``prior_chol`` (torch); None when the model has none."""
    prior = backend.info.get("prior")
    if prior is None:
        bundle = getattr(backend, "bundle", None)
        if getattr(bundle, "prior_mean", None) is not None and getattr(bundle, "prior_chol", None) is not None:
            prior = (bundle.prior_mean, bundle.prior_chol)
    if prior is None:
        return None
    return np.asarray(prior[0], np.float32), np.asarray(prior[1], np.float32)


def _say(msg: str) -> None:
    import sys

    print(f"neuraldrum: {msg}", file=sys.stderr, flush=True)


def default_graphs() -> Optional[Path]:
    """The default model's ONNX graphs shipped in the package (made from its bundle by ``make graphs``; a test
    checks they are current), or None in a checkout without them."""
    from .onnx_backend import DEFAULT_EXPORT

    return DEFAULT_EXPORT if (DEFAULT_EXPORT / "generator.onnx").is_file() else None


def player_model(model: Any, backend: str = "auto") -> tuple[Any, str]:
    """The (model, backend) a command plays: the default model (None) with ``"auto"`` or ``"onnx"`` is its shipped
    ONNX graphs (no torch, no export, a fraction of torch's start-up and memory); an export folder is ONNX; with
    ``"auto"`` a model bundle is torch."""
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"backend={backend!r}: use 'auto', 'onnx' or 'torch'")
    if model is None and backend != "torch" and default_graphs() is not None:
        return default_graphs(), "onnx"
    return model, auto_backend(model) if backend == "auto" else backend


def hifi_maker(model: Any = None, threads: Optional[int] = None,
               like: Optional[Engine] = None) -> Optional[Callable[[], Engine]]:
    """What makes the model's hi-fi engine (:data:`HIFI_ITERS` Griffin-Lim iterations after the inverter) for the
    live front ends' hi-fi renders (the page's still pad, slots and kit zips; OSC's ``quality hifi`` and
    /kit/save). ``like``: the playing engine of the same model; a torch one lends its loaded bundle (no second
    load, one copy of the weights), an ONNX one its export folder. None for an ONNX export without the mixer graph
    (exports of older versions)."""
    from pathlib import Path

    if like is not None and like.backend.name == "onnx":
        if not like.backend.has_mixer:
            return None

        def share() -> Engine:  # the playing engine's sessions: no second copy of the weights
            eng = Engine(like.backend, warm=False, hifi=True, backend="onnx")
            eng.model_name = like.model_name
            return eng
        return share
    if model is not None and (Path(model) / "export.json").is_file():
        if not (Path(model) / "mixer.onnx").is_file():
            return None
        return lambda: Engine(model, threads=threads, warm=False, hifi=True, backend="onnx")
    if like is not None and like.backend.name == "torch":
        return lambda: Engine(like.bundle, threads=threads, warm=False, hifi=True)
    return lambda: Engine(model, threads=threads, warm=False, hifi=True)


def playing_engine(model: Any = None, threads: Optional[int] = None, backend: str = "auto",
                   cache: Any = None, say=_say) -> Engine:
    """The engine for live use (``serve``, ``osc``, ``play``, ``render``). ``backend="auto"`` runs the default
    model from its shipped ONNX graphs, an export folder with onnxruntime and a bundle with torch (its playing path
    keeps FFTs as FFTs; ``neuraldrum bench``, ``bench/onnx`` compares them). ``"onnx"`` with a bundle
    exports it once into ``cache`` (default ``$NEURALDRUM_CACHE`` or ``~/.cache/neuraldrum``), keyed by its
    weights' checksum, the package version and ``GRAPHS_REVISION``; a cached export whose recorded checksums
    (weights, configs) differ, or that does not load, is exported again (a smaller process: ~140 MB against
    torch's ~370). ``"torch"`` forces torch."""
    import os
    from pathlib import Path

    model, backend = player_model(model, backend)
    if model is not None and (Path(model) / "generator.onnx").is_file() and backend != "torch":
        return Engine(model, threads=threads, backend="onnx")
    if backend != "onnx" or not have_torch():
        return Engine(model, threads=threads, backend="torch")
    import importlib.util

    missing = [m for m in ("onnxruntime", "onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"backend='onnx' needs {', '.join(missing)} to export and run this model "
                         "(pip install onnxruntime onnx onnxscript), or use backend='torch'")
    from . import GRAPHS_REVISION, __version__
    from .bundle import DEFAULT_BUNDLE, configs_sha256, read_meta

    meta = read_meta(model or DEFAULT_BUNDLE)
    sha, cfg_sha = meta["weights"]["sha256"], configs_sha256(meta)
    root = Path(cache or os.environ.get("NEURALDRUM_CACHE") or Path.home() / ".cache" / "neuraldrum")
    folder = root / f"onnx-{sha[:16]}-{__version__}-r{GRAPHS_REVISION}"
    name = Path(model or DEFAULT_BUNDLE).name  # the cache is shared by bundles with these weights: name the asked one
    if (folder / "generator.onnx").is_file():
        try:
            eng = Engine(folder, threads=threads, backend="onnx")
            if eng.model_sha256 == sha and eng.model_configs_sha256 == cfg_sha:
                eng.model_name = name
                return eng
            say(f"the cached ONNX engine in {folder} is for another model: exporting again")
        except (ValueError, OSError) as e:  # a damaged cache entry is rebuilt, not trusted
            say(f"the cached ONNX engine in {folder} cannot be used ({e}): exporting again")
    import logging
    import warnings

    from .export.models import export

    say(f"preparing the ONNX engine for this model, once (≈ 20 s) → {folder}")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(model, "onnx", folder)
    eng = Engine(folder, threads=threads, backend="onnx")
    eng.model_name = name
    return eng
