"""What one training step and one validation mean for each model; :mod:`.loop` does the rest.

A task owns its model (``model``; ``net`` is the same model, DDP-wrapped when multi-process), its data
pipeline and its losses. Every batch, augmentation and prior sample of step ``s`` comes from generators
seeded with ``(seed, s)``, so steps are reproducible and resumable.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..audio.mel import MelFrontend, Standardiser
from ..config import AudioConfig, MelConfig, TrainConfig, check_shapes
from ..data import augment as aug
from ..data.corpus import Corpus
from ..data.dataset import (STREAM_AUGMENT, STREAM_PRIOR, BalancedBatchSampler, RandomBatchSampler, fixed_subset,
                            load_clips, read_rows, shard, step_generator)
from ..models import build_model
from ..models.mcnn import gate
from . import dist
from .losses import (feature_matching, hinge_d_loss, hinge_g_loss, mcnn_loss, per_class_mmd, spectral_convergence,
                     phase_losses, vocos_loss, wae_loss)

STD_FLOOR = 0.1  # log-Mel std floor (natural-log units, ~0.9 dB) so near-constant bins are not blown up
STATS_CHUNK = 128  # clips per chunk when fitting the standardiser
VAL_CHUNK = 64
VAL_MIN_CODES = 8  # validation MMD: classes with fewer val clips are left out
PRIOR_CLIPS = 64  # train clips that set the scale of the Vocos-style inverter's Mel pseudo-inverse


@dataclass(frozen=True)
class RunConfigs:
    """Everything a run is built from; saved in every checkpoint."""

    task: str
    preset: str
    audio: AudioConfig
    mel: MelConfig
    model: Any  # WAEConfig | MCNNConfig
    train: TrainConfig


class Task:
    """Base class: the data plumbing shared by both models."""

    name = ""
    val_key = ""

    def __init__(self, corpus: Corpus, cfgs: RunConfigs, info: dist.DistInfo):
        self.corpus, self.cfgs, self.info = corpus, cfgs, info
        self.device = info.device
        self.tcfg = cfgs.train
        self.seed = cfgs.train.seed
        self.frontend = MelFrontend(cfgs.mel).to(self.device)
        self.train_idx = corpus.indices("train")
        if len(self.train_idx) == 0:
            raise ValueError(f"{corpus.root}: the corpus has no clips in the 'train' split")
        val = corpus.indices("val")
        if len(val) == 0:
            warnings.warn(f"{corpus.root}: no 'val' clips; validating on training clips", stacklevel=2)
            val = self.train_idx
        self.train_synthetic = corpus.synthetic(self.train_idx)
        if cfgs.train.synthetic_share is not None and not self.train_synthetic.any():
            warnings.warn(f"{corpus.root}: no synthesised clips in the 'train' split; the synthetic share "
                          f"{cfgs.train.synthetic_share} changes nothing", stacklevel=2)
        self.val_idx = fixed_subset(val, cfgs.train.val_max_clips, self.seed)
        self.val_wave = load_clips(corpus, self.val_idx)  # (V, N) on the CPU
        self.val_cls = torch.from_numpy(corpus.labels(self.val_idx))
        torch.manual_seed(self.seed)  # the same initial weights for a given seed
        self.model: nn.Module = build_model(self.name, cfgs.model, cfgs.mel).to(self.device)
        self.net: nn.Module = self.model

    def _batch(self, idx: np.ndarray, rows: np.ndarray, step: int, gain: bool) -> torch.Tensor:
        """This rank's clips of a global batch ``idx`` (shard ``rows``), augmented. Returns (b, N)."""
        wave = self._load(idx[rows]).to(self.device)
        a = self.tcfg.augment
        if a.pitch or a.filter or (a.gain and gain):
            p = aug.draw(len(idx), a, step_generator(self.seed, step, STREAM_AUGMENT), gain=gain)
            wave = aug.apply(wave, p.select(torch.from_numpy(rows)), self.cfgs.audio.sample_rate)
        return wave

    def _load(self, idx: np.ndarray) -> torch.Tensor:
        """Clips ``idx`` (rows of the corpus audio) as a (len(idx), N) tensor."""
        return load_clips(self.corpus, idx)

    def extra_state(self) -> dict:
        """Task state saved in checkpoints besides the model (e.g. the standardiser)."""
        return {"standardiser": None}

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        raise NotImplementedError


class WAETask(Task):
    """Conditional WAE on standardised log-Mels of class-balanced batches."""

    name = "wae"
    val_key = "val/wae/loss"

    def __init__(self, corpus: Corpus, cfgs: RunConfigs, info: dist.DistInfo, state: Optional[dict] = None):
        super().__init__(corpus, cfgs, info)
        check_shapes(cfgs.audio, cfgs.mel, wae=cfgs.model)
        labels = corpus.labels(self.train_idx)
        self.sampler = BalancedBatchSampler(self.train_idx, labels, cfgs.train.batch_per_class, self.seed,
                                            self.train_synthetic, cfgs.train.synthetic_share)
        st = (state or {}).get("standardiser")
        if st:
            self.standardiser = Standardiser(st["mean"].shape[0], st["mean"].shape[1], st["mean"], st["std"], st["eps"])
        else:
            self.standardiser = fit_standardiser(corpus, self.train_idx, self.frontend, info)
        self.standardiser = self.standardiser.to(self.device)

    @torch.no_grad()
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) waveform → (B, n_mels, T) standardised log-Mel."""
        return self.standardiser(self.frontend(wave))

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        idx, lab = self.sampler.batch(step)
        rows = shard(len(idx), self.info.rank, self.info.world, group=len(self.sampler.classes))
        x = self.features(self._batch(idx, rows, step, gain=False))
        cls = torch.from_numpy(lab[rows]).to(self.device)
        prior = torch.randn(len(idx), self.cfgs.model.latent_dim,
                            generator=step_generator(self.seed, step, STREAM_PRIOR))[rows].to(self.device)
        recon, z = self.net(x, cls)
        return wae_loss(recon, x, z, cls, prior, self.cfgs.model)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        sse, n, zs = 0.0, 0, []
        for i in range(0, len(self.val_idx), VAL_CHUNK):
            x = self.features(self.val_wave[i:i + VAL_CHUNK].to(self.device))
            recon, z = self.model(x, self.val_cls[i:i + VAL_CHUNK].to(self.device))
            sse += float((recon - x).pow(2).sum())
            n += x.numel()
            zs.append(z)
        z = torch.cat(zs)
        prior = torch.randn(z.shape, generator=torch.Generator().manual_seed(self.seed + 1)).to(self.device)
        mse = sse / max(n, 1)
        # MMD of a class with a handful of codes is mostly noise: use the classes with enough codes (or all pooled)
        cls = self.val_cls.to(self.device)
        counts = torch.bincount(cls, minlength=self.cfgs.model.n_classes)
        keep = counts[cls] >= VAL_MIN_CODES
        if bool(keep.any()):
            mmd = float(per_class_mmd(z[keep], cls[keep], prior[keep], self.cfgs.model.mmd_scales))
        else:
            mmd = float(per_class_mmd(z, torch.zeros_like(cls), prior, self.cfgs.model.mmd_scales))
        return {"val/wae/mse": mse, "val/wae/mmd": mmd, "val/wae/loss": mse + self.cfgs.model.beta * mmd}

    def extra_state(self) -> dict:
        s = self.standardiser
        return {"standardiser": {"mean": s.mean.detach().cpu(), "std": s.std.detach().cpu(), "eps": float(s.eps)}}


class _InverterTask(Task):
    """What the inverters share: random (not class-balanced) batches of augmented clips, gain included, and
    validation losses averaged over the validation clips."""

    def __init__(self, corpus: Corpus, cfgs: RunConfigs, info: dist.DistInfo):
        super().__init__(corpus, cfgs, info)
        # the unlabelled pool, if used, extends the training rows: row len(corpus) + p is pool clip p
        self.pool = corpus.pool if cfgs.train.use_pool and corpus.pool is not None and len(corpus.pool) else None
        rows, synthetic = self.train_idx, self.train_synthetic
        if self.pool is not None:
            rows = np.concatenate([rows, len(corpus) + np.arange(len(self.pool))])
            synthetic = np.concatenate([synthetic, np.zeros(len(self.pool), dtype=bool)])  # recordings
        self.sampler = RandomBatchSampler(rows, cfgs.train.batch_size, self.seed, synthetic,
                                          cfgs.train.synthetic_share)

    def _load(self, idx: np.ndarray) -> torch.Tensor:
        n = len(self.corpus)
        if self.pool is None or np.all(idx < n):
            return load_clips(self.corpus, idx)
        out = torch.empty(len(idx), self.corpus.n_samples)
        lab = idx < n
        if lab.any():
            out[torch.from_numpy(lab)] = load_clips(self.corpus, idx[lab])
        out[torch.from_numpy(~lab)] = read_rows(self.pool, idx[~lab] - n)
        return out

    def _run(self, net: nn.Module, wave: torch.Tensor) -> tuple:
        """(losses, …) for clips ``wave`` (B, N)."""
        raise NotImplementedError

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        idx = self.sampler.batch(step)
        rows = shard(len(idx), self.info.rank, self.info.world)
        return self._run(self.net, self._batch(idx, rows, step, gain=True))[0]

    def _val_losses(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._run(self.model, wave)[0]

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        tot: dict[str, float] = {}
        n = len(self.val_idx)
        for i in range(0, n, VAL_CHUNK):
            wave = self.val_wave[i:i + VAL_CHUNK].to(self.device)
            for k, v in self._val_losses(wave).items():
                tot["val/" + k] = tot.get("val/" + k, 0.0) + float(v) * wave.shape[0]
        return {k: v / max(n, 1) for k, v in tot.items()}


class MCNNTask(_InverterTask):
    """MCNN inverter: linear Mel of (augmented) real clips → the clips. Validation also reports
    "val/mcnn/sc_hard": the spectral convergence of the gated output."""

    name = "mcnn"
    val_key = "val/mcnn/loss"

    def __init__(self, corpus: Corpus, cfgs: RunConfigs, info: dist.DistInfo, state: Optional[dict] = None):
        super().__init__(corpus, cfgs, info)
        check_shapes(cfgs.audio, cfgs.mel, mcnn=cfgs.model)
        self.n_samples = cfgs.audio.n_samples

    def _run(self, net: nn.Module, wave: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Losses on clips ``wave`` (B, N); also the cropped outputs and the target Mel."""
        with torch.no_grad():
            mel = self.frontend.mel(wave)
        out, logits = net(mel)
        n = wave.shape[1]
        out, logits = out[:, :n], logits[:, :n]
        return mcnn_loss(out, logits, wave, self.frontend, self.cfgs.model, target_mel=mel), \
            gate(out, logits, self.cfgs.model.hop_length), mel

    def _val_losses(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        losses, hard, mel = self._run(self.model, wave)
        losses["mcnn/sc_hard"] = spectral_convergence(self.frontend.mel(hard), mel)
        return losses


class VocosTask(_InverterTask):
    """Vocos-style inverter: linear Mel of (augmented) real clips → the clips, on spectral losses only. The
    validation losses are the same measure for the adversarial variant."""

    name = "vocos"

    def __init__(self, corpus: Corpus, cfgs: RunConfigs, info: dist.DistInfo, state: Optional[dict] = None):
        super().__init__(corpus, cfgs, info)
        check_shapes(cfgs.audio, cfgs.mel, vocos=cfgs.model)
        self.val_key = f"val/{self.name}/loss"
        if cfgs.model.mel_prior and not (state or {}).get("model"):  # a resumed run has it in its weights
            from ..models.vocos import mel_prior_matrix
            from .losses import stft_magnitude

            m = cfgs.model
            with torch.no_grad():
                wave = load_clips(corpus, self.train_idx[:PRIOR_CLIPS]).to(self.device)
                P = mel_prior_matrix(cfgs.mel, m.n_fft, self.frontend.mel(wave),
                                     stft_magnitude(wave, m.n_fft, m.istft_hop, m.n_fft))
            self.model.mel_prior.copy_(P.to(self.device))

    def _run(self, net: nn.Module, wave: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        m = self.cfgs.model
        with torch.no_grad():
            mel = self.frontend.mel(wave)
        if m.phase_weight <= 0:
            out = net(mel)[:, :wave.shape[1]]
            return vocos_loss(out, wave, self.frontend, m, self.name, target_mel=mel), out
        out, phase = net(mel, with_phase=True)
        out = out[:, :wave.shape[1]]
        losses = vocos_loss(out, wave, self.frontend, m, self.name, target_mel=mel)
        with torch.no_grad():  # the clip's own STFT on the inverse STFT's grid (frame j centred at j · istft_hop)
            ref = torch.stft(wave, m.n_fft, m.istft_hop, m.n_fft, self.model.istft.window, center=True,
                             return_complex=True)
        ph = {f"{self.name}/{k}": v for k, v in phase_losses(phase, ref).items()}
        spectral = losses[f"{self.name}/loss"]
        losses.update(ph, **{f"{self.name}/spectral": spectral,
                             f"{self.name}/loss": spectral + m.phase_weight * sum(ph.values()) / len(ph)})
        return losses, out

    def _val_losses(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        """Validation ranks checkpoints (best.pt, the plateau schedule) by the spectral loss alone; the phase
        losses are logged beside it. So a run with phase losses compares with one without, and its best.pt is the
        one whose output is nearest the clips, not the one with the best phase terms."""
        losses = self._run(self.model, wave)[0]
        if f"{self.name}/spectral" in losses:
            losses[f"{self.name}/loss"] = losses[f"{self.name}/spectral"]
        return losses


class VocosGANTask(VocosTask):
    """The Vocos-style inverter trained also against multi-resolution spectrogram discriminators (hinge loss,
    feature matching). The discriminators take one Adam step per training step, before the generator's; they and
    their optimiser are saved in checkpoints, so a resumed run continues exactly. Validation measures the spectral
    loss only (``val/vocos_gan/loss``), so it compares with the plain Vocos-style run's. Single process only: the
    discriminators are not wrapped for DDP."""

    name = "vocos_gan"

    def __init__(self, corpus: Corpus, cfgs: RunConfigs, info: dist.DistInfo, state: Optional[dict] = None):
        super().__init__(corpus, cfgs, info, state)
        from ..models.vocos import MultiResolutionDiscriminator

        if cfgs.model.adv_weight <= 0:
            raise ValueError("vocos_gan: the model config's adv_weight must be > 0")
        if info.world > 1:
            raise ValueError("vocos_gan trains in one process (its discriminators are not wrapped for DDP)")
        torch.manual_seed(self.seed + 1)
        self.disc = MultiResolutionDiscriminator(cfgs.model).to(self.device)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfgs.train.lr, betas=(0.8, 0.99))
        st = (state or {}).get("disc")
        if st:
            self.disc.load_state_dict(st["model"])
            self.disc_opt.load_state_dict(st["opt"])

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        idx = self.sampler.batch(step)
        rows = shard(len(idx), self.info.rank, self.info.world)
        wave = self._batch(idx, rows, step, gain=True)
        losses, out = self._run(self.net, wave)
        self.disc.train()
        real = self.disc(wave)
        fake = self.disc(out.detach())
        d_loss = hinge_d_loss([r[0] for r in real], [f[0] for f in fake])
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.disc_opt.step()
        with torch.no_grad():  # the real clips' features under the updated discriminators, for feature matching
            real = self.disc(wave)
        for p in self.disc.parameters():
            p.requires_grad_(False)
        fake = self.disc(out)
        for p in self.disc.parameters():
            p.requires_grad_(True)
        m = self.cfgs.model
        adv = hinge_g_loss([f[0] for f in fake])
        fm = feature_matching([r[1] for r in real], [f[1] for f in fake])
        spectral = losses[f"{self.name}/loss"]
        losses.update({f"{self.name}/spectral": spectral, f"{self.name}/adv": adv, f"{self.name}/fm": fm,
                       f"{self.name}/disc": d_loss.detach(),
                       f"{self.name}/loss": spectral + m.adv_weight * adv + m.fm_weight * fm})
        return losses

    def extra_state(self) -> dict:
        return {"standardiser": None, "disc": {"model": self.disc.state_dict(), "opt": self.disc_opt.state_dict()}}


TASKS = {"wae": WAETask, "mcnn": MCNNTask, "vocos": VocosTask, "vocos_gan": VocosGANTask}


@torch.no_grad()
def fit_standardiser(corpus: Corpus, idx: np.ndarray, frontend: MelFrontend, info: dist.DistInfo) -> Standardiser:
    """Per-(bin, frame) mean and std of the log-Mels of clips ``idx`` (no augmentation).

    Chunks are shared out over the DDP ranks and the float64 sums all-reduced, so every rank gets the same
    statistics. The std is floored at :data:`STD_FLOOR`.
    """
    s1 = s2 = None
    chunks = range(0, len(idx), STATS_CHUNK)
    for k, i in enumerate(chunks):
        if k % info.world != info.rank:
            continue
        lm = frontend(load_clips(corpus, idx[i:i + STATS_CHUNK]).to(info.device)).double()
        s1 = lm.sum(0) if s1 is None else s1 + lm.sum(0)
        s2 = lm.pow(2).sum(0) if s2 is None else s2 + lm.pow(2).sum(0)
    if s1 is None:  # this rank had no chunk
        shape = frontend(torch.zeros(1, corpus.n_samples, device=info.device)).shape[1:]
        s1 = torch.zeros(shape, dtype=torch.float64, device=info.device)
        s2 = torch.zeros_like(s1)
    dist.all_reduce_sum(s1, info)
    dist.all_reduce_sum(s2, info)
    n = len(idx)
    mean = s1 / n
    std = (s2 / n - mean.pow(2)).clamp(min=0.0).sqrt().clamp(min=STD_FLOOR)
    return Standardiser(mean.shape[0], mean.shape[1], mean.float().cpu(), std.float().cpu(), eps=STD_FLOOR)
