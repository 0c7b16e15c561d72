"""A frame-rate inverter in the manner of Vocos (Siuzdenko 2023): linear Mel → waveform through an inverse STFT.

The Mel's log (floored) goes through a 1-d convolution and ``n_layers`` ConvNeXt blocks over frames (depthwise
conv, LayerNorm, pointwise MLP, layer scale, residual). A linear head emits, per Mel frame, ``r = hop_length /
istft_hop`` STFT frames of ``n_fft / 2 + 1`` log-magnitudes and phases; :class:`ISTFT` turns them into the
waveform. All layers run at the frame rate (87 frames for a 1 s sound), so the cost hardly depends on the sample
rate: only the head's width and the inverse FFT grow with it.

STFT frame ``j = t · r + k`` is centred at sample ``j · istft_hop = t · hop_length + k · istft_hop``, so the
first of each Mel frame's STFT frames sits where the Mel frame is centred.

With ``mel_prior`` the head's log-magnitudes are relative to a fixed estimate, ``log(max(P · mel, floor))``, where
``P`` (the ``mel_prior`` buffer, (n_fft/2+1, n_mels)) is the Mel filterbank's pseudo-inverse on the inverse STFT's
bins, scaled to its magnitudes (:func:`mel_prior_matrix`; filled by the training task, then saved with the
weights). The network then starts from what Griffin-Lim starts from and learns the detail and the phase.

With ``phase_advance`` the head's phases are increments: frame j's phase is the sum over frames up to j of
(the bin's own advance per hop, 2π·k·istft_hop/n_fft, plus the predicted deviation), so a steady partial at a
bin's frequency is phase-coherent from frame to frame without being learnt (a phase vocoder's rule). A sum
cannot place an onset, though: the phase across the bins of the frame where a hit starts (its group delay)
depends on everything summed before it. ``phase_offset`` = R > 0 adds to each frame's phase a term of its own,
not summed, from a rank-R head (``offset_down``, ``offset_up``; the latter zero at first, so a model whose
weights lack it starts as it was).

There is no mask and no gate: silence is a predicted magnitude near zero, so a sound's level falls as smoothly
as the magnitudes do.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MelConfig, VocosConfig

MAX_LOG_MAG = math.log(100.0)  # magnitudes are exp(min(x, this)): a bound for the first steps of training


def hann(n_fft: int, win_length: Optional[int] = None, device=None) -> torch.Tensor:
    """A periodic Hann window of ``win_length`` (default n_fft), zero-padded on both sides to ``n_fft`` as
    ``torch.stft`` pads it; on ``device`` (default: torch's current default device)."""
    win = int(win_length or n_fft)
    if not 0 < win <= n_fft:
        raise ValueError(f"window length {win} must be from 1 to n_fft {n_fft}")
    left = (n_fft - win) // 2
    return F.pad(torch.hann_window(win, periodic=True, device=device), (left, n_fft - win - left))


class ISTFT(nn.Module):
    """Inverse of a centred, Hann-windowed STFT: complex frames (B, n_fft/2+1, J) → (B, (J − 1) · hop) samples.

    Frames come from ``torch.fft.irfft``, windowed, overlap-added by ``n_fft / hop`` shifted sums (no fold, no
    scatter) and divided by the summed squared window. The same arithmetic as ``torch.istft(center=True)``;
    written out so that it exports to ONNX and TorchScript as plain operations.

    With ``factored`` set (the ONNX export sets it: onnxruntime's DFT operator took a third of the 44.1 kHz
    generator's time) the inverse FFT is two stages of small matrix products instead (Cooley–Tukey with
    ``n_fft = n1 · n2``, n1 ≈ √n_fft: n1-point transforms, twiddles, n2-point transforms), about
    2·√n_fft multiply-adds per sample rather than a dense transform's n_fft.
    """

    def __init__(self, n_fft: int, hop: int, win_length: Optional[int] = None, save_window: bool = True):
        super().__init__()
        if n_fft % hop:
            raise ValueError(f"ISTFT: n_fft {n_fft} must be a multiple of the hop {hop}")
        self.n_fft, self.hop = int(n_fft), int(hop)
        # saved by default: the inverter's bundles hold it (and are built on the meta device, then loaded); an
        # unsaved one is made on the CPU at once
        self.register_buffer("window", hann(n_fft, win_length, device=None if save_window else "cpu"),
                             persistent=save_window)
        self.factored = False
        self._envelopes: dict = {}  # see _envelope
        self.n1 = max(d for d in range(1, math.isqrt(self.n_fft) + 1) if self.n_fft % d == 0)
        self.n2 = self.n_fft // self.n1

    def _factors(self, device) -> tuple[torch.Tensor, ...]:
        """The stages' matrices (made from n_fft, not saved: constants of an exported graph): the n1-point
        transform [k1, n1], the twiddles [k2, n1], the n2-point transform [k2, n2] over n_fft; cos and sin each."""
        n, n1, n2 = self.n_fft, self.n1, self.n2
        a1 = 2 * math.pi * torch.outer(torch.arange(n1), torch.arange(n1)).double() / n1
        tw = 2 * math.pi * torch.outer(torch.arange(n2), torch.arange(n1)).double() / n
        a2 = 2 * math.pi * torch.outer(torch.arange(n2), torch.arange(n2)).double() / n2
        return tuple(t.float().to(device) for t in (a1.cos(), a1.sin(), tw.cos(), tw.sin(), a2.cos() / n,
                                                   a2.sin() / n))

    def _irfft_factored(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """``irfft(real + i·imag, n_fft)`` along dim 1 by two matrix-product stages: (B, bins, J) → (B, n_fft, J).
        The imaginary parts at 0 Hz and Nyquist are ignored, as ``irfft`` ignores them."""
        B, K, J = real.shape
        n, n1, n2 = self.n_fft, self.n1, self.n2
        f1_re, f1_im, tw_re, tw_im, f2_re, f2_im = self._factors(real.device)
        re, im = real.transpose(1, 2), imag.transpose(1, 2)  # (B, J, K)
        end = K - 1 if n % 2 == 0 else K  # X[n − k] = conj X[k] for the bins between 0 Hz and Nyquist
        re = torch.cat([re, re[..., 1:end].flip(-1)], dim=-1)
        im = torch.cat([im, -im[..., 1:end].flip(-1)], dim=-1)
        # (the imaginary parts at 0 Hz and Nyquist only ever reach the imaginary part of the output, dropped below)
        # k = n2 · k1 + k2 → [k2, k1]; stage 1 sums over k1 (an n1-point transform for each k2)
        re = re.reshape(B, J, n1, n2).transpose(-1, -2)
        im = im.reshape(B, J, n1, n2).transpose(-1, -2)
        yr = re @ f1_re - im @ f1_im  # (B, J, k2, n1)
        yi = re @ f1_im + im @ f1_re
        yr, yi = yr * tw_re - yi * tw_im, yr * tw_im + yi * tw_re
        # stage 2 sums over k2 for each n1, keeping the real part; output sample n = n1 + self.n1 · n2
        x = yr.transpose(-1, -2) @ f2_re - yi.transpose(-1, -2) @ f2_im  # (B, J, n1, n2)
        return x.transpose(-1, -2).reshape(B, J, n).transpose(1, 2)

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, n_fft, J) → (B, (J + n_fft / hop − 1) · hop): frame j added at sample j · hop."""
        B, _, J = frames.shape
        k = self.n_fft // self.hop
        parts = frames.reshape(B, k, self.hop, J).permute(0, 1, 3, 2).reshape(B, k, J * self.hop)
        out = F.pad(parts[:, 0], (0, (k - 1) * self.hop))
        for i in range(1, k):
            out = out + F.pad(parts[:, i], (i * self.hop, (k - 1 - i) * self.hop))
        return out

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        B, _, J = real.shape
        frames = self._irfft_factored(real, imag) if self.factored else \
            torch.fft.irfft(torch.complex(real, imag), n=self.n_fft, dim=1)
        frames = frames * self.window[None, :, None]
        wave = self._overlap_add(frames)
        half = self.n_fft // 2
        n = (J - 1) * self.hop
        return wave[:, half:half + n] / self._envelope(J)

    def _envelope(self, J: int) -> torch.Tensor:
        """The summed squared window over the output's samples for J frames (floored at 1e-8). It depends on J and
        the window alone, so it is kept per J (a third of the call's time, e.g. Griffin-Lim iterations repeat it);
        while tracing (ONNX, TorchScript) it is computed in the graph, so an export is tied to no length."""
        w, half = self.window, self.n_fft // 2

        def make() -> torch.Tensor:
            full = self._overlap_add(w.pow(2)[None, :, None].expand(1, self.n_fft, J))
            return full[:, half:half + (J - 1) * self.hop].clamp(min=1e-8)

        if w.is_meta or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return make()
        # (a window moved, replaced or written in place is a new key; an inference tensor has no version counter,
        # and cannot be written in place outside inference mode; one made in inference mode cannot take part in
        # autograd, so inference mode is part of the key)
        key = (J, w.device, w.dtype, -1 if w.is_inference() else w._version, w.data_ptr(),
               torch.is_inference_mode_enabled())
        env = self._envelopes.get(key)
        if env is None:
            if len(self._envelopes) >= 8:
                self._envelopes.clear()
            env = self._envelopes[key] = make()
        return env


class _MelGrid(nn.Module):
    """What works on the Mel's own STFT grid shares: its inverse STFT, its filterbank, and its forward STFT (with
    ``factored``, set by the ONNX export, both FFTs are two stages of matrix products)."""

    def __init__(self, mel: MelConfig):
        super().__init__()
        from ..audio.mel import mel_filterbank

        self.istft = ISTFT(mel.n_fft, mel.hop_length, mel.win_length, save_window=False)
        # made on the CPU even inside a meta-device context (a bundle builds its models there, then loads the
        # saved tensors; these are not saved)
        fb = torch.as_tensor(mel_filterbank(mel), dtype=torch.float32, device="cpu")  # (n_mels, bins)
        self.register_buffer("fb", fb, persistent=False)
        self.power = float(mel.power)
        self.momentum = 0.0

    @staticmethod
    def _magnitude(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        sq = re * re + im * im
        # training through it: sqrt's slope at an exactly silent bin is infinite (NaN gradients); playing: exact
        return torch.sqrt(sq + 1e-20) if sq.requires_grad else torch.sqrt(sq)

    def _iterate(self, wave: torch.Tensor, mel: torch.Tensor, n: int, multiplier,
                 magnitudes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``n`` rounds of: the output's STFT on the Mel's grid (its frames up to the Mel's), times
        ``multiplier(magnitudes)`` (B, J, bins), inverse STFT; the last part of a hop past the frames is kept as it
        was. With ``momentum`` α, from the third round the STFT is of ``w + α (w − w_prev)`` (w the last round's
        output, w_prev the one before): by linearity, fast Griffin-Lim's extrapolation ``C + α (C − C_prev)`` of
        the spectra, at a waveform's cost. Playing on a CPU (nothing to differentiate, not exporting) takes
        :meth:`_iterate_fast`, the same arithmetic in fewer, cheaper passes."""
        if self._fast_ok(wave, mel):
            return self._iterate_fast(wave, mel, n, multiplier, magnitudes)
        prev = None
        for i in range(n):
            x = wave if prev is None else wave + self.momentum * (wave - prev)
            if self.momentum and i > 0:  # (the input, round 1's, takes no part)
                prev = wave
            re, im = self._stft(x)  # (B, J, bins)
            re, im = re[:, :mel.shape[2]], im[:, :mel.shape[2]]  # (slices, not min(): they trace)
            m = multiplier(self._magnitude(re, im))
            y = self.istft((re * m).transpose(1, 2), (im * m).transpose(1, 2))
            wave = torch.cat([y, wave[:, y.shape[1]:]], dim=1)
        return wave

    def _fast_ok(self, wave: torch.Tensor, mel: torch.Tensor) -> bool:
        return (not self.factored and wave.device.type == "cpu" and wave.dtype == torch.float32
                and not (torch.is_grad_enabled() and (wave.requires_grad or mel.requires_grad))
                and not torch.jit.is_tracing() and not torch.jit.is_scripting() and not torch.onnx.is_in_onnx_export())

    def _iterate_fast(self, wave: torch.Tensor, mel: torch.Tensor, n: int, multiplier,
                      magnitudes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """:meth:`_iterate` for playing on a CPU: frames as a strided view, complex spectra kept whole, the
        per-bin arithmetic in numpy (torch's complex ``abs`` and strided real/imaginary parts cost ~10× numpy's
        here), the overlap-add in place into one buffer. Given the ``magnitudes`` (B, ≥ J, bins) that
        ``multiplier`` puts in (Griffin-Lim), the projection is done in place in numpy, and only the frames from
        the first to the last that has a magnitude above 0 are transformed (a frame of zeros contributes nothing).
        The same results as the traced path to float rounding (test)."""
        import numpy as np

        n_fft, hop = self.istft.n_fft, self.istft.hop
        B, N = wave.shape
        J = min(mel.shape[2], 1 + N // hop)
        k, half, L = n_fft // hop, n_fft // 2, (J - 1) * hop
        window = self.istft.window.to(wave.dtype)
        win, env = window.numpy(), self.istft._envelope(J).numpy()  # env: (1, L)
        padded = F.pad(wave, (half, half))  # the output so far, zero-padded for centred frames
        out, buf = padded.numpy(), np.empty((B, (J + k - 1) * hop), dtype=np.float32)
        j0, j1, mags = 0, J, None
        if magnitudes is not None:
            mags = magnitudes[:, :J].numpy()
            live = np.flatnonzero(mags.max(axis=(0, 2)) > 0)
            j0, j1 = (int(live[0]), int(live[-1]) + 1) if live.size else (0, 0)
            mags = mags[:, j0:j1]
            if j0 == j1 and n:  # nothing to put in: every round gives silence over the frames
                out[:, half:half + L] = 0.0
                return padded[:, half:half + N].contiguous()
        prev = moved = None
        for i in range(n):
            x = padded
            if prev is not None:  # the extrapolation, as _iterate
                np.subtract(out, prev, out=moved)
                moved *= self.momentum
                moved += out
                x = torch.from_numpy(moved)
            if self.momentum and i > 0:
                if prev is None:
                    prev, moved = out.copy(), np.empty_like(out)
                else:
                    prev[...] = out
            spec = torch.fft.rfft(x.unfold(-1, n_fft, hop)[:, j0:j1] * window, dim=-1).numpy()  # (B, J', bins)
            if mags is None:
                np.multiply(spec, multiplier(torch.from_numpy(np.abs(spec))).numpy(), out=spec)
            else:  # spec · mags / max(|spec|, 1e-12), as multiplier does
                m = np.abs(spec)
                np.maximum(m, 1e-12, out=m)
                np.divide(mags, m, out=m)
                np.multiply(spec, m, out=spec)
            frames = torch.fft.irfft(torch.from_numpy(spec), n=n_fft, dim=-1).numpy()  # (B, J', n_fft)
            frames *= win
            parts = frames.reshape(B, j1 - j0, k, hop)
            buf[:] = 0.0
            for j in range(k):  # frame t's j-th hop lands at samples (t + j) · hop
                buf[:, (j0 + j) * hop:(j1 + j) * hop].reshape(B, j1 - j0, hop)[...] += parts[:, :, j]
            np.divide(buf[:, half:half + L], env, out=out[:, half:half + L])
        return padded[:, half:half + N].contiguous()

    @property
    def factored(self) -> bool:
        return self.istft.factored

    @factored.setter
    def factored(self, on: bool) -> None:
        self.istft.factored = on

    def _rfft_factored(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``rfft(frames)`` (B, J, n_fft) → real and imaginary (B, J, n_fft/2+1) by two matrix-product stages
        (sample n = n2 · a + b, bin k = k1 + n1 · k2: n1-point transforms over a, twiddles, n2-point over b, only
        the k2 that reach bins up to Nyquist). Every product has the constant on the right, which onnxruntime
        runs as one large GEMM."""
        B, J, n = frames.shape
        n1, n2 = self.istft.n1, self.istft.n2
        h = n2 // 2 + 1  # k2 < h covers k = k1 + n1 · k2 ≤ n / 2
        a1 = 2 * math.pi * torch.outer(torch.arange(n1), torch.arange(n1)).double() / n1  # [a, k1], symmetric
        tw = 2 * math.pi * torch.outer(torch.arange(n2), torch.arange(n1)).double() / n  # [b, k1]
        a2 = 2 * math.pi * torch.outer(torch.arange(n2), torch.arange(h)).double() / n2  # [b, k2]
        c1, s1, ct, st, c2, s2 = (t.float().to(frames.device) for t in (a1.cos(), a1.sin(), tw.cos(), tw.sin(),
                                                                        a2.cos(), a2.sin()))
        x = frames.reshape(B, J, n1, n2).transpose(-1, -2)  # [b, a]
        yr, yi = x @ c1, -(x @ s1)  # [b, k1]
        yr, yi = yr * ct + yi * st, yi * ct - yr * st  # times e^{−2πi k1 b / n}
        yr, yi = yr.transpose(-1, -2), yi.transpose(-1, -2)  # [k1, b]
        xr, xi = yr @ c2 + yi @ s2, yi @ c2 - yr @ s2  # [k1, k2]
        k = n // 2 + 1
        return tuple(t.transpose(-1, -2).reshape(B, J, h * n1)[..., :k] for t in (xr, xi))

    def _stft(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Centred, zero-padded STFT on the Mel's grid: (B, N) → real, imaginary (B, 1 + N // hop, bins)
        (frames first, as the gains are computed)."""
        n_fft, hop = self.istft.n_fft, self.istft.hop  # (the ISTFT requires hop to divide n_fft)
        padded = F.pad(wave, (n_fft // 2, n_fft // 2))
        J = 1 + wave.shape[1] // hop
        k = n_fft // hop  # frames as k shifted runs of hop-long blocks: slices, no gather
        blocks = padded[:, :(J + k - 1) * hop].reshape(wave.shape[0], J + k - 1, hop)
        frames = torch.cat([blocks[:, i:i + J] for i in range(k)], dim=2)
        frames = frames * self.istft.window
        if self.factored:
            return self._rfft_factored(frames)
        spec = torch.fft.rfft(frames, dim=-1)
        return spec.real, spec.imag


class MelMatch(_MelGrid):
    """Rounds of Mel matching: the inverter's waveform is analysed on the Mel's own STFT grid; each frame's
    magnitudes are scaled, band by band, by how far the output's Mel is from the Mel it was asked for, and the
    scaled frames are put back by the inverse STFT. (B, N) wave and the (B, n_mels, T) linear Mel → (B, N).

    The gain of Mel band m in frame t is ``(mel + f) / (mel_out + f)`` clamped to [1/``limit``, ``limit``]
    (``f`` = ``floor`` · the clip's Mel peak, so near-silent bands are not blown up); a bin's gain is the
    filterbank-weighted mean of its bands' gains (a bin no band covers takes the nearest covered bin's). The
    gains are smooth across bins, so the network's phases are kept: no phase is estimated here. The network's
    frames overlap with phases that partly cancel (a kick lost a median 3 dB below 200 Hz that way); this puts the
    energy the Mel asks for back. With ``momentum`` α > 0 each round from the third starts from
    ``C + α (C − C_prev)``: C the STFT of the last round's output, C_prev that of the output before (as in fast
    Griffin-Lim, Perraudin et al. 2013); the same cost per round, closer to the Mel sooner. With ``factored`` (set
    by the ONNX export) the FFTs are two stages of matrix products.
    """

    def __init__(self, mel: MelConfig, rounds: int, limit: float = 4.0, floor: float = 1e-5, momentum: float = 0.0):
        super().__init__(mel)
        self.rounds, self.limit, self.floor, self.momentum = int(rounds), float(limit), float(floor), float(momentum)
        fb = self.fb
        cover = fb.sum(0)
        covered = cover > 1e-6 * cover.max()  # (the filterbank's last weights towards Nyquist can be ~1e-17)
        if not bool(covered.any()):
            raise ValueError("MelMatch: the Mel filterbank covers no STFT bin")
        spread = torch.where(covered, fb / cover.clamp(min=1e-30), 0.0)
        # a bin no band covers (0 Hz, beyond fmax) takes the gains of the nearest bin one does
        where = torch.nonzero(covered)[:, 0]
        nearest = where[(torch.arange(len(cover), device="cpu")[:, None] - where[None]).abs().argmin(1)]
        self.register_buffer("spread", spread[:, nearest], persistent=False)

    def forward(self, wave: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        if wave.is_meta:  # a dry run of shapes (bundle loading): the output has the input's shape by construction
            return wave
        floor = (self.floor * mel.amax(dim=(1, 2), keepdim=True)).clamp(min=1e-12)  # (a silent Mel: gains of 1)

        def gain(mag: torch.Tensor) -> torch.Tensor:
            out = torch.matmul(mag if self.power == 1.0 else mag ** self.power, self.fb.t())  # (B, J, n_mels)
            target = mel.transpose(1, 2)[:, :mag.shape[1]]
            ratio = ((target + floor) / (out + floor)).clamp(1 / self.limit, self.limit)
            if self.power != 1.0:
                ratio = ratio ** (1 / self.power)
            return torch.matmul(ratio, self.spread)  # (B, J, bins)

        return self._iterate(wave, mel, self.rounds, gain)


class GriffinLimSteps(_MelGrid):
    """Fast Griffin-Lim iterations (Perraudin et al. 2013) on the Mel's own STFT grid, started from the inverter's
    waveform instead of from no phase. (B, N) wave and the (B, n_mels, T) linear Mel → (B, N).

    The magnitudes aimed at are those the Mel implies, ``max(pinv(fb) · mel, 0) ** (1 / power)`` (the Mel
    filterbank's pseudo-inverse; where the bands are narrow, the low bins, nearly the true ones). Each iteration
    takes the output's STFT, keeps its phases, puts those magnitudes in, and resynthesises; from the third, the STFT
    is first extrapolated by ``momentum`` · its change since the iteration before. A frame whose loudest aimed-at
    bin is ``SILENT_DB`` (−100 dB) or more under the clip's loudest is aimed at silence, and playing skips it.
    Started cold, Griffin-Lim needs its 32 iterations to find phases that agree across overlapping frames; started
    from the network's, a few iterations improve every fidelity measure (models and numbers: the README).
    """

    SILENT_DB = -100.0

    def __init__(self, mel: MelConfig, iters: int, momentum: float = 0.99):
        super().__init__(mel)
        self.iters, self.momentum = int(iters), float(momentum)
        self.register_buffer("pinv", torch.linalg.pinv(self.fb.double()).float(), persistent=False)  # (bins, n_mels)

    def target(self, mel: torch.Tensor) -> torch.Tensor:
        """The magnitudes aimed at: (B, n_mels, T) linear Mel → (B, T, n_fft/2+1), frames aimed at silence 0."""
        target = torch.matmul(mel.transpose(1, 2), self.pinv.t()).clamp(min=0.0)  # (B, T, bins)
        if self.power != 1.0:
            target = target ** (1 / self.power)
        # a frame whose loudest bin is SILENT_DB or more under the clip's loudest is made silent (below 16 bits
        # once the sound peaks at -1 dBFS), so playing transforms only the frames from the first to the last loud one
        frame_peak = target.amax(dim=2, keepdim=True)
        return target * (frame_peak > frame_peak.amax(dim=1, keepdim=True) * 10 ** (self.SILENT_DB / 20))

    def forward(self, wave: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        if wave.is_meta:  # a dry run of shapes (bundle loading), as MelMatch
            return wave
        target = self.target(mel)
        return self._iterate(wave, mel, self.iters,  # the Mel's magnitudes, the phases kept (a bin of 0 stays 0)
                             lambda mag: target[:, :mag.shape[1]] / mag.clamp(min=1e-12), magnitudes=target)


def mel_prior_matrix(mel_cfg, n_fft: int, mels: torch.Tensor, mags: torch.Tensor) -> torch.Tensor:
    """``P`` (n_fft/2+1, n_mels): the pseudo-inverse of the Mel filterbank (``mel_cfg``'s bands on an ``n_fft``
    grid), times the one scale that best maps ``P · mel`` onto the inverse STFT's magnitudes in the log domain
    (the median log-ratio over the example Mels ``mels`` (B, n_mels, T) and their STFT magnitudes ``mags``
    (B, n_fft/2+1, T'), T' ≥ T, compared frame by frame, where the magnitudes are above −60 dB of their peak)."""
    import dataclasses

    import numpy as np

    from ..audio.mel import mel_filterbank

    fb = mel_filterbank(dataclasses.replace(mel_cfg, n_fft=int(n_fft)))
    P = torch.from_numpy(np.linalg.pinv(fb)).float().to(mels.device)  # (bins, n_mels)
    est = torch.einsum("km,bmt->bkt", P, mels).clamp(min=1e-5)
    r = mags.shape[2] // mels.shape[2] if mags.shape[2] >= mels.shape[2] else 1
    ref = mags[:, :, ::r][:, :, :est.shape[2]]
    est = est[:, :, :ref.shape[2]]
    keep = ref > ref.amax() * 1e-3
    ratio = torch.log(ref[keep]) - torch.log(est[keep])
    return P * float(torch.exp(ratio.median())) if ratio.numel() else P


class ConvNeXtBlock(nn.Module):
    """Depthwise conv over frames → LayerNorm → Linear → GELU → Linear, scaled, plus the input."""

    def __init__(self, dim: int, hidden: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).transpose(1, 2)  # (B, T, dim)
        y = self.down(F.gelu(self.up(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class VocosInverter(nn.Module):
    """Mel (B, n_mels, T) → waveform (B, (T · r − 1) · istft_hop), ``r = hop_length / istft_hop``.

    Args:
        cfg: the architecture; kept as ``self.cfg`` so a checkpoint can rebuild the model.
        mel: the Mel settings of the inputs; needed only with ``cfg.mel_match`` or ``cfg.gl_iters`` (see
            :class:`MelMatch`, :class:`GriffinLimSteps`).
    """

    INIT_OPTIONAL = ("offset_down.", "offset_up.")  # `train --init` may start from weights without these

    def __init__(self, cfg: VocosConfig, mel: Optional[MelConfig] = None):
        super().__init__()
        if cfg.hop_length % cfg.istft_hop:
            raise ValueError(f"VocosConfig: hop_length {cfg.hop_length} must be a multiple of istft_hop "
                             f"{cfg.istft_hop}")
        if cfg.n_fft % cfg.istft_hop:
            raise ValueError(f"VocosConfig: n_fft {cfg.n_fft} must be a multiple of istft_hop {cfg.istft_hop}")
        self.cfg = cfg
        self.hop_length = int(cfg.hop_length)
        self.r = cfg.hop_length // cfg.istft_hop
        self.n_bins = cfg.n_fft // 2 + 1
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.norm_in = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dim, cfg.hidden, cfg.kernel, cfg.layer_scale)
                                    for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = nn.Linear(cfg.dim, self.r * 2 * self.n_bins)
        self.istft = ISTFT(cfg.n_fft, cfg.istft_hop)
        if cfg.mel_prior:
            self.register_buffer("mel_prior", torch.zeros(self.n_bins, cfg.n_mels))
        self.use_prior = bool(cfg.mel_prior)
        self.phase_advance = bool(cfg.phase_advance)
        if cfg.phase_offset:  # a low-rank head for each frame's own phase term (zero at first: see the docstring)
            self.offset_down = nn.Linear(cfg.dim, cfg.phase_offset)
            self.offset_up = nn.Linear(cfg.phase_offset, self.r * self.n_bins)
            nn.init.zeros_(self.offset_up.weight)
            nn.init.zeros_(self.offset_up.bias)
        self.phase_offset = bool(cfg.phase_offset)
        self.mel_match = None
        if cfg.mel_match:
            if mel is None:  # (that it agrees with cfg is config.check_shapes' business, as for every inverter)
                raise ValueError("VocosConfig.mel_match: the inverter needs the Mel settings to match its output to")
            self.mel_match = MelMatch(mel, cfg.mel_match, momentum=cfg.mel_match_momentum)
        self.gl = None
        if cfg.gl_iters:
            if mel is None:
                raise ValueError("VocosConfig.gl_iters: the inverter needs the Mel settings to aim its output at")
            self.gl = GriffinLimSteps(mel, cfg.gl_iters, cfg.gl_momentum)
        self.advance_step = 2 * math.pi * cfg.istft_hop / cfg.n_fft  # a bin's phase advance per hop, over k
        self.log_floor = 1e-5
        self.max_log_mag = MAX_LOG_MAG

    def spectrum(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary STFT frames (B, n_fft/2+1, T · r) for a linear Mel (B, n_mels, T)."""
        mag, phase = self.mag_phase(mel)
        return mag * torch.cos(phase), mag * torch.sin(phase)

    def mag_phase(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes and (unwrapped) phases of the STFT frames, each (B, n_fft/2+1, T · r)."""
        x = self.embed(torch.log(mel.clamp(min=self.log_floor)))
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x)
        h = self.norm_out(x.transpose(1, 2))
        y = self.head(h)  # (B, T, r · 2 · bins)
        B, T = y.shape[0], y.shape[1]
        y = y.reshape(B, T * self.r, 2, self.n_bins)
        logmag = y[:, :, 0]
        if self.use_prior:  # (B, bins, T) → each Mel frame's estimate for its r STFT frames
            prior = torch.log(torch.einsum("km,bmt->btk", self.mel_prior, mel).clamp(min=self.log_floor))
            logmag = logmag + prior.repeat_interleave(self.r, dim=1)
        mag = torch.exp(logmag.clamp(max=self.max_log_mag))
        phase = y[:, :, 1]
        if self.phase_advance:
            k = torch.arange(self.n_bins, dtype=phase.dtype, device=phase.device)
            phase = torch.cumsum(phase + self.advance_step * k, dim=1)
        if self.phase_offset:
            phase = phase + self.offset_up(self.offset_down(h)).reshape(B, T * self.r, self.n_bins)
        return mag.transpose(1, 2), phase.transpose(1, 2)

    def forward(self, mel: torch.Tensor, with_phase: bool = False):
        """Linear Mel (B, n_mels, T) → waveform (B, (T · r − 1) · istft_hop) (≥ (T − 1) · hop_length); with
        ``with_phase`` also the STFT frames' phases (B, n_fft/2+1, T · r), for the phase losses of training."""
        mag, phase = self.mag_phase(mel)
        wave = self.istft(mag * torch.cos(phase), mag * torch.sin(phase))
        if self.mel_match is not None:
            wave = self.mel_match(wave, mel)
        if self.gl is not None:
            wave = self.gl(wave, mel)
        return (wave, phase) if with_phase else wave

    def infer(self, mel: torch.Tensor) -> torch.Tensor:
        """The playable output (the same as :meth:`forward`: no mask, no gate). Not ``torch.jit.export``-ed: the
        module is traced inside the exported graphs, where a scripted method calling ``forward`` would clash."""
        return self.forward(mel)


class SpectrogramDiscriminator(nn.Module):
    """One resolution of a multi-resolution discriminator: 2-d convs over the log-magnitude STFT (freq × time),
    strided in frequency. Returns the logits map and every layer's activations (for feature matching)."""

    def __init__(self, n_fft: int, hop: int, win: int, channels: int):
        super().__init__()
        self.n_fft, self.hop, self.win = n_fft, hop, win
        self.register_buffer("window", torch.hann_window(win), persistent=False)
        c = channels
        self.convs = nn.ModuleList([
            nn.Conv2d(1, c, (7, 5), padding=(3, 2)),
            nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1)),
            nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1)),
            nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1)),
            nn.Conv2d(c, c, (3, 3), padding=(1, 1)),
        ])
        self.out = nn.Conv2d(c, 1, (3, 3), padding=(1, 1))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wave, self.n_fft, self.hop, self.win, self.window, return_complex=True).abs()
        x = torch.log(spec.clamp(min=1e-5))[:, None]
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.out(x), feats


class MultiResolutionDiscriminator(nn.Module):
    """One :class:`SpectrogramDiscriminator` per ``(n_fft, hop, win)`` triple of the config's resolutions."""

    def __init__(self, cfg: VocosConfig):
        super().__init__()
        r = cfg.resolutions
        self.discs = nn.ModuleList(SpectrogramDiscriminator(int(r[i]), int(r[i + 1]), int(r[i + 2]),
                                                            cfg.disc_channels) for i in range(0, len(r), 3))

    def forward(self, wave: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(wave) for d in self.discs]
