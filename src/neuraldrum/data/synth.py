"""A small drum synthesiser, so that tests (and demos) can make labelled audio with no data installed.

Every voice returns mono float32 ``(n,)`` peaking at 1, with randomness from a ``numpy`` Generator so a
seed reproduces it. The sounds are simple but have the spectral signature of their class: a kick is a
pitch-swept decaying sine, a closed hat a short high-passed noise burst, a snare both, and so on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy.signal import butter, sosfilt

from ..taxonomy import CLASSES

SR = 22050


def _t(dur: float, sr: int) -> np.ndarray:
    return np.arange(int(dur * sr)) / sr


def _env(t: np.ndarray, decay: float, attack: float = 0.001) -> np.ndarray:
    a = np.clip(t / attack, 0.0, 1.0)
    return a * np.exp(-t / decay)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _filt(x: np.ndarray, kind: str, freq, sr: int, order: int = 4) -> np.ndarray:
    sos = butter(order, freq, btype=kind, fs=sr, output="sos")
    return sosfilt(sos, x)


def _norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x / (np.max(np.abs(x)) + 1e-12)).astype(np.float32)


def kick(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.6, sr)
    f0, f1 = rng.uniform(120, 200), rng.uniform(40, 60)
    freq = f1 + (f0 - f1) * np.exp(-t / rng.uniform(0.02, 0.05))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return _norm(np.sin(phase) * _env(t, rng.uniform(0.15, 0.3)))


def snare(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.4, sr)
    body = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * _env(t, 0.05)
    noise = _filt(_noise(rng, t.size), "bandpass", (1500, 9000), sr) * _env(t, rng.uniform(0.08, 0.15))
    return _norm(0.6 * body + noise / (np.std(noise) * 3 + 1e-9))


def clap(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.4, sr)
    n = _filt(_noise(rng, t.size), "bandpass", (900, 2500), sr)
    env = np.zeros_like(t)
    for k, off in enumerate((0.0, 0.011, 0.023)):
        env += np.where(t >= off, np.exp(-(t - off) / 0.006), 0.0) * (0.7 if k < 2 else 0.0)
    env += np.where(t >= 0.03, np.exp(-(t - 0.03) / rng.uniform(0.06, 0.12)), 0.0)
    return _norm(n * env)


def hh_closed(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.15, sr)
    return _norm(_filt(_noise(rng, t.size), "highpass", rng.uniform(6000, 8000), sr) * _env(t, rng.uniform(0.01, 0.03)))


def hh_open(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.8, sr)
    return _norm(_filt(_noise(rng, t.size), "highpass", rng.uniform(5000, 7000), sr) * _env(t, rng.uniform(0.2, 0.35)))


def tom(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.7, sr)
    f0 = rng.uniform(90, 250)
    freq = f0 * (1 + 0.3 * np.exp(-t / 0.05))
    return _norm(np.sin(2 * np.pi * np.cumsum(freq) / sr) * _env(t, rng.uniform(0.2, 0.35)))


def _metal(rng: np.random.Generator, t: np.ndarray, base: float, sr: int) -> np.ndarray:
    ratios = np.array([1.0, 1.48, 1.62, 2.03, 2.57, 3.11])
    x = sum(np.sign(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 6.3))) for r in ratios)
    return _filt(x, "highpass", 3000, sr, order=2)


def ride(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(1.2, sr)
    ping = _metal(rng, t, rng.uniform(300, 450), sr) * _env(t, 0.5)
    wash = _filt(_noise(rng, t.size), "highpass", 4000, sr) * _env(t, 0.6) * 0.3
    return _norm(ping + wash)


def crash(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(1.5, sr)
    wash = _filt(_noise(rng, t.size), "highpass", rng.uniform(2500, 3500), sr) * _env(t, rng.uniform(0.6, 1.0), 0.005)
    return _norm(wash + 0.3 * _metal(rng, t, 420.0, sr) * _env(t, 0.4))


def rim(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.1, sr)
    f = rng.uniform(1500, 2500)
    return _norm(np.sin(2 * np.pi * f * t) * _env(t, 0.012) + 0.3 * _noise(rng, t.size) * _env(t, 0.003))


def cowbell(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.5, sr)
    f = rng.uniform(540, 600)
    x = np.sign(np.sin(2 * np.pi * f * t)) + np.sign(np.sin(2 * np.pi * f * 1.48 * t))
    return _norm(_filt(x, "bandpass", (500, 3500), sr, order=2) * _env(t, rng.uniform(0.08, 0.15)))


def shaker(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = _t(0.3, sr)
    env = np.clip(t / 0.03, 0, 1) * np.exp(-t / rng.uniform(0.04, 0.07))
    return _norm(_filt(_noise(rng, t.size), "bandpass", (4000, 10000), sr) * env)


VOICES: dict[str, Callable[..., np.ndarray]] = {
    "kick": kick, "snare": snare, "clap": clap, "hh_closed": hh_closed, "hh_open": hh_open, "tom": tom,
    "ride": ride, "crash": crash, "rim": rim, "cowbell": cowbell, "shaker": shaker,
}
assert tuple(VOICES) == CLASSES


def synth(cls: str, seed: int = 0, sr: int = SR, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """One hit of class ``cls``. Returns (n,) float32, peak 1."""
    if cls not in VOICES:
        raise ValueError(f"unknown class {cls!r}; choose from {', '.join(CLASSES)}")
    return VOICES[cls](rng if rng is not None else np.random.default_rng(seed), sr)


def write_sample_folder(root: Path, per_class: int = 3, seed: int = 0, sr: int = 44100,
                        classes: tuple[str, ...] = CLASSES) -> list[Path]:
    """Write ``per_class`` WAVs per class into ``root/<class>/<class>_<k>.wav`` (names carry the label)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    paths = []
    for cls in classes:
        d = Path(root) / cls
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            p = d / f"{cls}_{k}.wav"
            sf.write(str(p), 0.8 * synth(cls, sr=sr, rng=rng), sr, subtype="PCM_16")
            paths.append(p)
    return paths
