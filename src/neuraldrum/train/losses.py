"""Training losses. Keys are '/'-namespaced ("wae/mse", "mcnn/sc", …) and shared with the logs.

WAE: MSE + β · mean over the classes in the batch of MMD²(codes of that class, samples of N(0, I)), with the
multi-scale inverse multiquadratic kernel ``k(x, y) = Σ_s C_s / (C_s + ‖x − y‖²)``, ``C_s = 2 · d · s``.

MCNN: ``sc_weight`` · spectral convergence of the Mel + ``logmel_weight`` · relative L1 of the log-Mel +
``mask_weight`` · BCE of the mask logits against the target's support.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .. import metrics
from ..audio.mel import MelFrontend
from ..config import MCNNConfig, VocosConfig, WAEConfig


def imq_kernel(x: torch.Tensor, y: torch.Tensor, scales: Sequence[float]) -> torch.Tensor:
    """Multi-scale inverse multiquadratic kernel matrix.

    Args:
        x: (n, d), y: (m, d).
    Returns:
        (n, m): ``Σ_s C_s / (C_s + ‖x_i − y_j‖²)`` with ``C_s = 2 · d · s``.
    """
    d = x.shape[1]
    # ‖x‖² + ‖y‖² − 2 x·y: O(n·m) memory, and (unlike cdist) a finite gradient at zero distance
    d2 = (x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2.0 * x @ y.t()).clamp(min=0.0)
    k = torch.zeros_like(d2)
    for s in scales:
        c = 2.0 * d * float(s)
        k = k + c / (c + d2)
    return k


def mmd_imq(x: torch.Tensor, y: torch.Tensor, scales: Sequence[float]) -> torch.Tensor:
    """Unbiased estimate of MMD² between samples ``x`` (n, d) and ``y`` (m, d); n, m ≥ 2. Returns a scalar."""
    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = imq_kernel(x, x, scales), imq_kernel(y, y, scales), imq_kernel(x, y, scales)
    off_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    off_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return off_x + off_y - 2.0 * kxy.mean()


def per_class_mmd(z: torch.Tensor, cls: torch.Tensor, prior: torch.Tensor, scales: Sequence[float]) -> torch.Tensor:
    """Mean over the classes present (with ≥ 2 codes) of MMD²(codes of the class, prior samples).

    Args:
        z: (B, d) codes; cls: (B,) class ids; prior: (B, d) samples of N(0, I) (row i is paired with code i).
    Returns:
        scalar (0 if no class has two codes).
    """
    terms = []
    for c in torch.unique(cls):
        sel = cls == c
        if int(sel.sum()) >= 2:
            terms.append(mmd_imq(z[sel], prior[sel], scales))
    return torch.stack(terms).mean() if terms else z.sum() * 0.0


def wae_loss(recon: torch.Tensor, x: torch.Tensor, z: torch.Tensor, cls: torch.Tensor, prior: torch.Tensor,
             cfg: WAEConfig) -> dict[str, torch.Tensor]:
    """The WAE objective.

    Args:
        recon, x: (B, n_mels, T) standardised log-Mel. z: (B, d). cls: (B,). prior: (B, d) N(0, I) samples.
    Returns:
        {"wae/mse", "wae/mmd", "wae/loss"} scalars.
    """
    mse = F.mse_loss(recon, x)
    mmd = per_class_mmd(z, cls, prior, cfg.mmd_scales)
    return {"wae/mse": mse, "wae/mmd": mmd, "wae/loss": mse + cfg.beta * mmd}


def support_mask(wave: torch.Tensor, threshold_db: float = -60.0) -> torch.Tensor:
    """Where a clip is "on": from sample 0 up to its last sample within ``threshold_db`` of its peak.

    Args:
        wave: (B, N)
    Returns:
        (B, N) float, 1 on the support and 0 in the zero-padded (or inaudible) tail.
    """
    mag = wave.abs()
    thr = mag.amax(dim=1, keepdim=True) * (10.0 ** (threshold_db / 20.0))
    above = (mag > thr) & (mag > 0)
    n = wave.shape[1]
    last = n - 1 - torch.flip(above, dims=[1]).float().argmax(dim=1)  # index of the last sample above
    last = torch.where(above.any(dim=1), last, torch.full_like(last, -1))
    return (torch.arange(n, device=wave.device)[None, :] <= last[:, None]).to(wave.dtype)


def spectral_convergence(m_out: torch.Tensor, m_ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over clips of ‖M_ref − M_out‖_F / ‖M_ref‖_F (:func:`neuraldrum.metrics.spectral_convergence`).
    Args: (B, n_mels, T) each. Returns a scalar."""
    return metrics.spectral_convergence(m_out, m_ref, eps).mean()


def relative_log_l1(m_out: torch.Tensor, m_ref: torch.Tensor, floor: float) -> torch.Tensor:
    """Mean over clips of ‖log(M_ref + f) − log(M_out + f)‖₁ / ‖log(M_ref + f)‖₁. Returns a scalar."""
    l_ref, l_out = torch.log(m_ref + floor), torch.log(m_out + floor)
    return ((l_ref - l_out).abs().flatten(1).sum(1) / l_ref.abs().flatten(1).sum(1).clamp(min=1e-8)).mean()


def mcnn_loss(wave: torch.Tensor, mask_logits: torch.Tensor, target: torch.Tensor, frontend: MelFrontend,
              cfg: MCNNConfig, target_mel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The MCNN objective on the soft-masked output ``wave · sigmoid(mask_logits)``.

    Args:
        wave, mask_logits: (B, N) model outputs, already cropped to the target length.
        target: (B, N) the clip the Mel came from.
        frontend: Mel analysis (the same as the model's input).
        cfg: loss weights and the support threshold.
        target_mel: (B, n_mels, T) ``frontend.mel(target)`` if already computed.
    Returns:
        {"mcnn/sc", "mcnn/logmel", "mcnn/mask", "mcnn/loss"} scalars.
    """
    out = wave * torch.sigmoid(mask_logits)
    m_ref = frontend.mel(target) if target_mel is None else target_mel
    m_out = frontend.mel(out)
    sc = spectral_convergence(m_out, m_ref)
    logmel = relative_log_l1(m_out, m_ref, frontend.cfg.log_floor)
    mask = F.binary_cross_entropy_with_logits(mask_logits, support_mask(target, cfg.support_db))
    loss = cfg.sc_weight * sc + cfg.logmel_weight * logmel + cfg.mask_weight * mask
    return {"mcnn/sc": sc, "mcnn/logmel": logmel, "mcnn/mask": mask, "mcnn/loss": loss}


def stft_magnitude(wave: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """|STFT| (B, n_fft/2+1, frames), centred, Hann; floored at 1e-5 inside the square root so that the
    gradient is finite where a bin is exactly zero."""
    spec = torch.stft(wave, n_fft, hop, win, torch.hann_window(win, device=wave.device), return_complex=True)
    return (spec.real.pow(2) + spec.imag.pow(2) + 1e-10).sqrt()


def mrstft_loss(out: torch.Tensor, ref: torch.Tensor, resolutions) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over resolutions of the spectral convergence and of the mean |ln|X_out| − ln|X_ref||, as
    :func:`neuraldrum.metrics.multi_resolution_stft` measures them. ``resolutions``: flat (n_fft, hop, win)
    triples. Returns (sc, log-magnitude L1) scalars."""
    sc = lg = 0.0
    n = len(resolutions) // 3
    for i in range(0, 3 * n, 3):
        n_fft, hop, win = (int(v) for v in resolutions[i:i + 3])
        m_out, m_ref = stft_magnitude(out, n_fft, hop, win), stft_magnitude(ref, n_fft, hop, win)
        sc = sc + ((m_ref - m_out).flatten(1).norm(dim=1) / m_ref.flatten(1).norm(dim=1).clamp(min=1e-8)).mean()
        lg = lg + (torch.log(m_out) - torch.log(m_ref)).abs().mean()
    return sc / n, lg / n


def vocos_loss(out: torch.Tensor, target: torch.Tensor, frontend: MelFrontend, cfg: VocosConfig,
               prefix: str = "vocos", target_mel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The spectral objective of the Vocos-style inverter: multi-resolution STFT (SC + log-magnitude L1) plus
    ``mel_weight`` · L1 of the log-Mels. ``out``, ``target``: (B, N). Keys ``{prefix}/sc``, ``/logmag``,
    ``/logmel``, ``/loss``."""
    sc, lg = mrstft_loss(out, target, cfg.resolutions)
    m_ref = frontend.mel(target) if target_mel is None else target_mel
    floor = frontend.cfg.log_floor
    logmel = (torch.log(frontend.mel(out).clamp(min=floor)) - torch.log(m_ref.clamp(min=floor))).abs().mean()
    loss = sc + lg + cfg.mel_weight * logmel
    return {f"{prefix}/sc": sc, f"{prefix}/logmag": lg, f"{prefix}/logmel": logmel, f"{prefix}/loss": loss}


def wrapped_abs(d: torch.Tensor) -> torch.Tensor:
    """|d| taken modulo 2π onto [0, π]: the distance between two angles whose difference is ``d``."""
    return (d - 2.0 * math.pi * torch.round(d / (2.0 * math.pi))).abs()


def phase_losses(phase: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
    """How far predicted STFT phases are from a clip's own, on the same grid, in the manner of APNet's
    anti-wrapping losses (Ai & Ling 2023), but each bin weighted by the clip's magnitude there, so that the
    loud bins (those spectral convergence weighs) count and the noise floor does not.

    Args:
        phase: (B, F, J) predicted phases (any unwrapping). ref: (B, F, J') complex STFT of the clip, J' ≥ J
            or J ≥ J' (both are cut to the shorter).
    Returns:
        {"ip": instantaneous phase, "gd": group delay (differences along frequency), "iaf": instantaneous
        frequency (differences along time)}: each the weighted mean of the wrapped absolute differences, in
        radians (0 for the clip's own phases, about π/2 for random ones).
    """
    J = min(phase.shape[2], ref.shape[2])
    phase, ref = phase[:, :, :J], ref[:, :, :J]
    a, phi = ref.abs(), torch.angle(ref)

    def mean(w: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        w = w / w.flatten(1).sum(1).clamp(min=1e-12)[:, None, None]
        return (w * wrapped_abs(d)).flatten(1).sum(1).mean()

    return {"ip": mean(a, phase - phi),
            "gd": mean(torch.minimum(a[:, 1:], a[:, :-1]), phase.diff(dim=1) - phi.diff(dim=1)),
            "iaf": mean(torch.minimum(a[:, :, 1:], a[:, :, :-1]), phase.diff(dim=2) - phi.diff(dim=2))}


def hinge_d_loss(real: list, fake: list) -> torch.Tensor:
    """Discriminator hinge loss summed over resolutions: mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))."""
    return sum(F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean() for r, f in zip(real, fake))


def hinge_g_loss(fake: list) -> torch.Tensor:
    """Generator hinge loss summed over resolutions: mean(relu(1 − D(fake)))."""
    return sum(F.relu(1.0 - f).mean() for f in fake)


def feature_matching(real_feats: list, fake_feats: list) -> torch.Tensor:
    """Mean over resolutions and layers of |f_real − f_fake| / mean|f_real| (real features detached)."""
    terms = [(r.detach() - f).abs().mean() / r.detach().abs().mean().clamp(min=1e-5)
             for rs, fs in zip(real_feats, fake_feats) for r, f in zip(rs, fs)]
    return torch.stack(terms).mean()
