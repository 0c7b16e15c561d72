"""Measurements of a model bundle on held-out real clips.

Metric keys are '/'-namespaced and shared by logs and reports ("recon/logmel_l1", "inv/mcnn_sc", …).
Everything here is computed on the corpus split you name (``test`` by default): never on training data.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from .audio.mel import MelFrontend
from .config import MelConfig
from .data.corpus import Corpus
from .engine import Engine


# ---------------------------------------------------------------- metrics known on paper

def spectral_convergence(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """||ref - est||_F / ||ref||_F per item. est, ref: (B, F, T) magnitudes → (B,)."""
    num = torch.linalg.norm((ref - est).flatten(1), dim=1)
    return num / torch.linalg.norm(ref.flatten(1), dim=1).clamp(min=1e-8)


def log_l1(est: torch.Tensor, ref: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """Mean |log(max(est, floor)) - log(max(ref, floor))| per item. (B, F, T) → (B,)."""
    return (torch.log(est.clamp(min=floor)) - torch.log(ref.clamp(min=floor))).abs().flatten(1).mean(1)


def _summ(x: torch.Tensor) -> dict:
    x = x.double()
    return {"mean": float(x.mean()), "median": float(x.median())}


# ---------------------------------------------------------------- baselines

def griffin_lim_from_mel(mel: np.ndarray, cfg: MelConfig, n_iter: int = 32, n_samples: Optional[int] = None) -> np.ndarray:
    """librosa's Mel inversion (NNLS to linear, then Griffin-Lim). mel: (n_mels, T) linear → (n_samples,)."""
    import librosa

    y = librosa.feature.inverse.mel_to_audio(
        mel, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window=cfg.window, center=True, pad_mode="constant", power=cfg.power, n_iter=n_iter,
        fmin=cfg.fmin, fmax=cfg.fmax, htk=cfg.mel_scale == "htk", norm=cfg.norm, length=n_samples)
    return y.astype(np.float32)


# ---------------------------------------------------------------- evaluations

@torch.inference_mode()
def reconstruction(engine: Engine, corpus: Corpus, split: str = "test", limit: Optional[int] = None) -> dict:
    """WAE: encode → decode on real clips (true class); log-Mel L1 and Mel spectral convergence; and
    MCNN alone (true Mel → wave) vs Griffin-Lim 32 iterations from the same Mel, judged on the Mel of
    each output. Returns '/'-keyed metrics."""
    b = engine.bundle
    fe = MelFrontend(b.mel)
    idx = corpus.indices(split)
    if limit:
        idx = idx[:limit]
    x = torch.as_tensor(np.asarray(corpus.audio[idx], dtype=np.float32))
    y = torch.as_tensor(corpus.labels(idx))
    mel = fe.mel(x)
    logmel = fe.log(mel)
    z = b.wae.encode(b.standardiser(logmel), y)
    rec_log = b.standardiser.inverse(b.wae.decode(z, y))
    rec_mel = (torch.exp(rec_log) - b.mel.log_floor).clamp(min=0)
    out = {"recon/n": len(idx), "recon/split": split}
    out["recon/logmel_l1"] = _summ((rec_log - logmel).abs().flatten(1).mean(1))
    out["recon/mel_sc"] = _summ(spectral_convergence(rec_mel, mel))
    wav = b.mcnn.infer(mel)[:, : x.shape[1]]
    mel_mcnn = fe.mel(wav)
    out["inv/mcnn_sc"] = _summ(spectral_convergence(mel_mcnn, mel))
    out["inv/mcnn_logmel_l1"] = _summ(log_l1(mel_mcnn, mel, b.mel.log_floor))
    gl = torch.stack([torch.from_numpy(griffin_lim_from_mel(m.numpy(), b.mel, 32, x.shape[1])) for m in mel])
    mel_gl = fe.mel(gl)
    out["inv/gl32_sc"] = _summ(spectral_convergence(mel_gl, mel))
    out["inv/gl32_logmel_l1"] = _summ(log_l1(mel_gl, mel, b.mel.log_floor))
    # end to end: encode → decode → MCNN, against the real clip
    e2e = fe.mel(torch.from_numpy(engine._invert(rec_log)))
    mel_n = mel / mel.flatten(1).amax(1)[:, None, None].clamp(min=1e-8)
    e2e_n = e2e / e2e.flatten(1).amax(1)[:, None, None].clamp(min=1e-8)
    out["e2e/mel_sc"] = _summ(spectral_convergence(e2e_n, mel_n))
    out["e2e/logmel_l1"] = _summ(log_l1(e2e_n, mel_n, b.mel.log_floor))
    return out


@torch.inference_mode()
def class_faithfulness(engine: Engine, corpus: Corpus, per_class: int = 50, seed: int = 0,
                       split: str = "test") -> dict:
    """The bundle's classifier (trained on the real train split only) as a listener: its accuracy on the
    real ``split`` clips, and on ``per_class`` prior samples of each class."""
    clf = engine.bundle.classifier
    if clf is None:
        return {}
    fe = engine.frontend
    idx = corpus.indices(split)
    x = torch.as_tensor(np.asarray(corpus.audio[idx], dtype=np.float32))
    y = corpus.labels(idx)
    pred_real = clf(fe(x)).argmax(1).numpy()
    out = {"listen/real_acc": float((pred_real == y).mean()), "listen/real_n": int(len(y))}
    per, correct_all = {}, []
    for ci, cls in enumerate(engine.classes):
        z = engine.sample_prior(per_class, seed + ci)
        waves = engine.generate_batch([cls] * per_class, z)
        pred = clf(fe(torch.from_numpy(waves))).argmax(1).numpy()
        per[cls] = float((pred == ci).mean())
        correct_all.append(pred == ci)
    out["listen/prior_acc"] = float(np.concatenate(correct_all).mean())
    out["listen/prior_acc_per_class"] = per
    out["listen/prior_per_class_n"] = per_class
    return out


def latency(engine: Engine, runs: int = 100, warmup: int = 10, threads: int = 1) -> dict:
    """Wall time of ``engine.generate`` for one 1 s sound (ms): median and p95 over ``runs``."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cls = engine.classes[0]
        z = engine.sample_prior(runs + warmup, 0)
        times = []
        for k in range(runs + warmup):
            t0 = time.perf_counter()
            engine.generate(cls, z=z[k])
            if k >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        torch.set_num_threads(old)
    t = np.asarray(times)
    return {"latency/generate_ms_median": float(np.median(t)), "latency/generate_ms_p95": float(np.percentile(t, 95)),
            "latency/threads": threads, "latency/runs": runs}
