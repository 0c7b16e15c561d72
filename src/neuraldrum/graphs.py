"""The two inference graphs every host calls: what the engine, the sound service, evaluation, the bench and the
exports run. Each is an ``nn.Module`` built from a loaded bundle, batched, with no mutable state and no locks
(callers may share one across threads), device-aware (``.to("cuda")`` works; nothing needs a GPU).

- :class:`Generator`: (class index (B,), z (B, D)) → finished waveform (B, n_samples): decoder,
  de-standardisation, the one log-Mel → Mel inversion, the inverter with its gated support mask, fades and
  peak normalisation.
- :class:`Analyzer`: prepared clip (B, n_samples) → (z (B, D), class probabilities (B, C), class used (B,)):
  Mel front end, listener, standardisation, encoder.
- :class:`Mixer`: (class a, class b, t, z) → the inverter's waveform before the finishing steps, and the magnitudes
  hi-fi rendering aims at (exported for hosts without torch: morphs across classes, hi-fi in numpy).

An MCNN inverter runs as :class:`PolyphaseMCNN`: the MCNN's stride-2 transposed convolutions rewritten as ordinary
convolutions over the input (the even and odd output samples are two short filters on the same input), the
same function with ≈ 30 % less time on a CPU, since no multiply ever meets an inserted zero. A Vocos-style
inverter (:class:`~neuraldrum.models.vocos.VocosInverter`) runs as it is: it already works at the frame rate.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .audio.mel import MelFrontend, mel_filterbank
from .bundle import Bundle, configs_sha256, load_bundle
from .config import MelConfig
from .models.mcnn import MCNN, gate
from .sampler import PEAK as OUT_PEAK  # -1 dBFS, the same peak the sampler controls normalise to

FADE_IN = 16  # samples: no click at the start
FADE_OUT_MS = 10.0


def polyphase_kernel(weight: torch.Tensor, padding: int, groups: int) -> tuple[torch.Tensor, int, int]:
    """A stride-2 ``ConvTranspose1d`` weight (C_in, C_out / G, k) with ``padding`` → an equivalent ``conv1d``.

    Output sample n = 2t + r of the transposed conv is Σ_c Σ_j x[c, i] W[c, o, j] over n = 2i − padding + j, so
    phase r uses the taps j ≡ r + padding (mod 2) on inputs i = t + q_r − m. Both phases become output channels
    of one conv1d over x: channel order (group, o, r), so an interleave of each (o, r) pair gives the waveform.

    Returns:
        (weight (2 · C_out, C_in / G, K), left pad, right pad) for ``F.conv1d`` on the zero-padded input.
    """
    c_in, c_og, k = weight.shape
    taps = []  # per phase: list of (input offset d, tap j)
    for r in (0, 1):
        s = (r + padding) % 2
        q = (r + padding - s) // 2
        taps.append([(q - m, s + 2 * m) for m in range((k - s + 1) // 2)])
    left = max(-d for phase in taps for d, _ in phase)
    right = max(d for phase in taps for d, _ in phase)
    K = torch.zeros(c_in, c_og, 2, left + right + 1, dtype=weight.dtype)
    for r, phase in enumerate(taps):
        for d, j in phase:
            K[:, :, r, d + left] = weight[:, :, j]
    c_ig = c_in // groups
    K = K.view(groups, c_ig, c_og, 2, -1).permute(0, 2, 3, 1, 4).reshape(groups * c_og * 2, c_ig, -1)
    return K.contiguous(), left, right


class PolyphaseMCNN(nn.Module):
    """The playable path of a trained :class:`~neuraldrum.models.mcnn.MCNN` (``MCNN.infer``), as plain
    convolutions. Weights are buffers copied from the MCNN at construction (rebuild after changing it)."""

    def __init__(self, mcnn: MCNN):
        super().__init__()
        convs = [m for m in mcnn.body if isinstance(m, nn.ConvTranspose1d)]
        self.groups: list[int] = []
        self.pads: list[tuple[int, int]] = []
        for i, c in enumerate(convs):
            if c.stride[0] != 2 or c.bias is not None or c.dilation[0] != 1:
                raise ValueError("PolyphaseMCNN: expects stride-2, bias-free transposed convolutions")
            w, left, right = polyphase_kernel(c.weight.detach(), c.padding[0], c.groups)
            self.register_buffer(f"w{i}", w)
            self.groups.append(c.groups)
            self.pads.append((left, right))
        self.n_heads = mcnn.n_heads
        self.hop_length = mcnn.hop_length
        self.register_buffer("head_scale", mcnn.head_scale.detach().clone())
        self.squash = mcnn.squash

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear Mel (B, n_mels, T) → masked waveform (B, T · hop), as ``MCNN.infer``."""
        wave, logits = self.parts(mel)
        return gate(wave, logits, self.hop_length)

    def parts(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear Mel (B, n_mels, T) → (wave before the mask, mask logits), each (B, T · hop)."""
        y = mel
        n = len(self.groups)
        for i in range(n):
            y = F.conv1d(F.pad(y, self.pads[i]), getattr(self, f"w{i}"), groups=self.groups[i])
            B, C2, L = y.shape
            y = y.view(B, C2 // 2, 2, L).transpose(2, 3).reshape(B, C2 // 2, 2 * L)
            if i < n - 1:
                y = F.elu(y)
        y = y.view(y.shape[0], self.n_heads, 2, y.shape[-1])
        return self.squash((y[:, :, 0] * self.head_scale[None, :, None]).sum(dim=1)), y[:, :, 1].sum(dim=1)


def loudest_log_mel(mel: MelConfig) -> float:
    """The log of the largest Mel value a waveform within ±1 can have: a bin's magnitude is at most the window's
    sum, so a band's at most its filter weights' sum times that (to ``power``)."""
    window_sum = float(torch.hann_window(mel.win_length, periodic=True, dtype=torch.float64).sum())
    return math.log(float(mel_filterbank(mel).sum(axis=1).max()) * window_sum ** mel.power)


class Generator(nn.Module):
    """(class index, latent) → finished waveform, in one graph.

    Args:
        bundle: a loaded bundle; its WAE, standardiser and MCNN are shared, not copied (the MCNN's weights are
            re-laid-out for :class:`PolyphaseMCNN`).
    """

    def __init__(self, bundle: Bundle):
        super().__init__()
        self.wae = bundle.wae
        self.standardiser = bundle.standardiser
        self.inverter = PolyphaseMCNN(bundle.inverter) if isinstance(bundle.inverter, MCNN) else bundle.inverter
        self.log_floor = float(bundle.mel.log_floor)
        self.n_samples = int(bundle.audio.n_samples)
        self.mel_cfg = bundle.mel
        self.log_mel_max = loudest_log_mel(bundle.mel)
        self.refine: Optional[nn.Module] = None  # hi-fi rendering: see set_hifi
        n_out = int(FADE_OUT_MS * bundle.audio.sample_rate / 1000)
        self.register_buffer("fade_in", torch.linspace(0, 1, FADE_IN), persistent=False)
        self.register_buffer("fade_out", torch.cos(torch.linspace(0, math.pi / 2, n_out)) ** 2, persistent=False)
        self.eval()

    def logmel(self, cls: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Decode. cls (B,) long, z (B, D) → log-Mel (B, n_mels, T)."""
        return self.standardiser.inverse(self.wae.decode(z, cls))

    def invert(self, logmel: torch.Tensor) -> torch.Tensor:
        """The one log-Mel → waveform path. log-Mel (B, n_mels, T) → finished wave (B, n_samples): the Mel is
        exp(log-Mel) − floor (so the floor, i.e. silence, becomes 0), then the inverter, fades, peak −1 dBFS.
        The log-Mel is first capped at the loudest any sound within ±1 can have (:func:`loudest_log_mel`): a
        latent far outside the prior decodes to log-Mels of hundreds, whose exp is infinite in float32."""
        mel = self.mel(logmel)
        wave = self.inverter(mel)
        if self.refine is not None:
            wave = self.refine(wave, mel)
        return self.finish(wave)

    def mel(self, logmel: torch.Tensor) -> torch.Tensor:
        """log-Mel (B, n_mels, T) → the linear Mel the inverter takes, exp(capped log-Mel) − floor, ≥ 0."""
        return (torch.exp(logmel.clamp(max=self.log_mel_max)) - self.log_floor).clamp(min=0.0)

    def set_hifi(self, iters: int) -> None:
        """Hi-fi rendering: after the inverter, ``iters`` fast Griffin-Lim iterations on the Mel's grid started
        from its output (:class:`neuraldrum.models.vocos.GriffinLimSteps`); 0: off (the playing path). Any
        inverter; the cost is per iteration (≈ 0.8 ms for a 1 s sound at 44.1 kHz on one thread)."""
        from .config import MAX_GL_ITERS, gl_iters_ok
        from .models.vocos import GriffinLimSteps

        if not gl_iters_ok(iters):
            raise ValueError(f"hifi={iters!r}: use a whole number of iterations from 0 to {MAX_GL_ITERS}")
        device = self.fade_in.device
        self.refine = GriffinLimSteps(self.mel_cfg, iters).to(device) if iters else None

    def finish(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) raw inverter output → click-free, peak-normalised (B, n_samples)."""
        n = self.n_samples
        wave = wave[:, :n] if wave.shape[1] >= n else F.pad(wave, (0, n - wave.shape[1]))
        ramp = torch.ones(n, dtype=wave.dtype, device=wave.device)
        ramp[: self.fade_in.numel()] = self.fade_in
        ramp[n - self.fade_out.numel():] = self.fade_out
        wave = wave * ramp
        peak = wave.abs().amax(dim=1, keepdim=True).clamp(min=1e-6)
        return wave * (OUT_PEAK / peak)

    def mask_logits(self, cls: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The MCNN inverter's support-mask logits of the sound, (B, n_samples): where |logit| is tiny a sample may
        be kept by one implementation and zeroed by another. (A Vocos-style inverter has no mask: ValueError.)"""
        if not isinstance(self.inverter, PolyphaseMCNN):
            raise ValueError("this bundle's inverter has no support mask")
        mel = (torch.exp(self.logmel(cls, z)) - self.log_floor).clamp(min=0.0)
        logits = self.inverter.parts(mel)[1][:, : self.n_samples]
        return F.pad(logits, (0, self.n_samples - logits.shape[1]))

    def forward(self, cls: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """cls (B,) long, z (B, D) float → waveform (B, n_samples) float, peak −1 dBFS."""
        return self.invert(self.logmel(cls, z))


class Mixer(nn.Module):
    """(class a, class b, t, latent) → the inverter's waveform before the finishing steps, and the magnitudes hi-fi
    rendering aims at: what a host without torch needs for a morph across classes and for hi-fi rendering (the
    Griffin-Lim iterations and the finishing steps are :mod:`neuraldrum.hifi`, numpy).

    Args:
        generator: the playing graph whose decoder and inverter are shared (its hi-fi setting is not used).
    """

    def __init__(self, generator: Generator):
        super().__init__()
        from .models.vocos import GriffinLimSteps

        self.generator = generator
        self.aim = GriffinLimSteps(generator.mel_cfg, 0)
        self.eval()

    def forward(self, cls_a: torch.Tensor, cls_b: torch.Tensor, t: torch.Tensor,
                z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cls_a, cls_b (B,) long, t (B,) float, z (B, D) → (wave (B, M) before fades and peak, Griffin-Lim's
        target (B, T, n_fft/2+1)), from the log-Mel (1 − t) · decode(z, a) + t · decode(z, b)."""
        g, tt = self.generator, t[:, None, None]
        mel = g.mel((1 - tt) * g.logmel(cls_a, z) + tt * g.logmel(cls_b, z))
        return g.inverter(mel), self.aim.target(mel)


class Analyzer(nn.Module):
    """Prepared clip → latent and class probabilities, in one graph.

    Args:
        bundle: a loaded bundle (its WAE encoder, standardiser, listener and Mel settings are shared).
    """

    def __init__(self, bundle: Bundle):
        super().__init__()
        self.frontend = MelFrontend(bundle.mel)
        self.standardiser = bundle.standardiser
        self.wae = bundle.wae
        self.classifier = bundle.classifier
        self.n_classes = len(bundle.classes)
        self.eval()

    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n_samples) → log-Mel (B, n_mels, T)."""
        return self.frontend(wave)

    def probs(self, logmel: torch.Tensor) -> torch.Tensor:
        """log-Mel (B, n_mels, T) → class probabilities (B, C) from the listener."""
        if self.classifier is None:
            raise ValueError("this bundle has no classifier; pass the class explicitly")
        return torch.softmax(self.classifier(logmel), dim=1)

    def latent(self, logmel: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """log-Mel (B, n_mels, T), cls (B,) long → z (B, D)."""
        return self.wae.encode(self.standardiser(logmel), cls)

    def forward(self, wave: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """wave (B, n_samples) prepared clips (onset-aligned, peak-normalised), cls (B,) long with −1 meaning
        "the listener's choice" → (z (B, D), probs (B, C), class used (B,)). Without a listener, probs are
        uniform and every cls must be given."""
        lm = self.logmel(wave)
        if self.classifier is not None:
            p = self.probs(lm)
            cls = torch.where(cls < 0, p.argmax(dim=1), cls)
        else:  # callers check; here (no data-dependent branch, so the graph exports) −1 becomes class 0
            p = torch.full((wave.shape[0], self.n_classes), 1.0 / self.n_classes, device=wave.device)
            cls = cls.clamp(min=0)
        return self.latent(lm, cls), p, cls


def model_info(bundle: Bundle) -> dict:
    """What an engine (and an export) needs to know about a bundle besides its graphs: classes, rates, sizes,
    the prior temperature, the PCA axes the controls move along (3 per class, numpy), classifier presence, the
    weights' checksum and path."""
    pca = {name: (p.mean.numpy().astype(np.float32), p.components[:3].numpy().astype(np.float32),
                  p.scales[:3].numpy().astype(np.float32)) for name, p in bundle.pca.items()}
    return {"classes": bundle.classes, "sample_rate": int(bundle.audio.sample_rate),
            "n_samples": int(bundle.audio.n_samples), "latent_dim": int(bundle.wae.cfg.latent_dim),
            "fade_ms": float(bundle.audio.fade_ms), "fade_shape": str(bundle.audio.fade_shape),
            "prior_temperature": float(bundle.meta.get("prior_temperature", 1.0)),
            "has_classifier": bundle.classifier is not None, "sha256": bundle.meta["weights"]["sha256"],
            "configs_sha256": configs_sha256(bundle.meta),
            "path": str(bundle.path) if bundle.path is not None else None, "pca": pca}


class TorchBackend:
    """The engine's graphs in eager PyTorch. numpy in, numpy out.

    Args:
        bundle: a :class:`Bundle`, a path to one, or None for the packaged default.
        threads: torch intra-op threads (process-wide), None = torch's default.
        device: None = CUDA when available, else the CPU.
        hifi: Griffin-Lim iterations after the inverter (:meth:`Generator.set_hifi`); 0: the playing path.
    """

    name = "torch"

    def __init__(self, bundle: Any = None, threads: Optional[int] = None, device: Any = None, hifi: int = 0):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if threads:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.generator = Generator(self.bundle).to(self.device)
        self.generator.set_hifi(hifi)
        self.analyzer = Analyzer(self.bundle).to(self.device)
        self.frontend = self.analyzer.frontend
        self.info = model_info(self.bundle)

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @torch.inference_mode()
    def generate(self, cls: np.ndarray, z: np.ndarray) -> np.ndarray:
        """cls (B,) int64, z (B, D) float32 → (B, n_samples) float32."""
        if self.generator.refine is not None:
            return self._hifi(self.generator.logmel(self._t(cls), self._t(z)))
        return self.generator(self._t(cls), self._t(z)).cpu().numpy()

    def _hifi(self, logmel: torch.Tensor) -> np.ndarray:
        """Hi-fi: the Griffin-Lim steps from the inverter's wave, then as loud as that wave finished (the playing
        path's sound: :func:`neuraldrum.hifi.match_level`, as the ONNX backend does)."""
        from .hifi import match_level

        g = self.generator
        mel = g.mel(logmel)
        wave = g.inverter(mel)
        live, hifi = g.finish(wave), g.finish(g.refine(wave, mel))
        return match_level(hifi.cpu().numpy(), live.cpu().numpy(), int(self.info["sample_rate"]))

    @torch.inference_mode()
    def analyse(self, wave: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """wave (B, n_samples) prepared clips, cls (B,) int64 (−1 = predicted) → z, probs, class used."""
        z, p, used = self.analyzer(self._t(wave), self._t(cls))
        return z.cpu().numpy(), p.cpu().numpy(), used.cpu().numpy()

    @torch.inference_mode()
    def mix(self, cls_a: np.ndarray, cls_b: np.ndarray, t: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Decode z (B, D) with both classes, mix the log-Mels (1 − t)·a + t·b (t: (B,)), invert → (B, n_samples)."""
        g, z_t, tt = self.generator, self._t(z), self._t(t.astype(np.float32))[:, None, None]
        lm = (1 - tt) * g.logmel(self._t(cls_a), z_t) + tt * g.logmel(self._t(cls_b), z_t)
        return self._hifi(lm) if g.refine is not None else g.invert(lm).cpu().numpy()
