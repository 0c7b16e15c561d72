"""A tiny randomly initialised bundle (no training needed) for engine, graph, service and kit tests."""
import dataclasses

import numpy as np
import torch

from neuraldrum.audio.mel import MelFrontend, Standardiser
from neuraldrum.bundle import PCA, save_bundle
from neuraldrum.config import tiny
from neuraldrum.data.synth import synth
from neuraldrum.models.blocks import ConditionalBatchNorm2d
from neuraldrum.models.classifier import ClassifierConfig, DrumClassifier
from neuraldrum.models.mcnn import MCNN
from neuraldrum.models.vocos import VocosInverter, mel_prior_matrix
from neuraldrum.train.losses import stft_magnitude
from neuraldrum.models.wae import ConditionalWAE
from neuraldrum.taxonomy import CLASSES


def random_bundle(out, inverter: str = "mcnn"):
    """Save a tiny random bundle (WAE, inverter: an MCNN or a Vocos-style one, listener, standardiser fitted on
    synthesised drums, PCA) to ``out``."""
    torch.manual_seed(0)
    p = tiny()
    wae, mcnn = ConditionalWAE(p.wae).eval(), MCNN(p.mcnn).eval()
    if inverter == "vocos_phase":  # phases summed over frames plus each frame's own term (made non-zero)
        p = dataclasses.replace(p, vocos=dataclasses.replace(p.vocos, phase_advance=True, phase_offset=4))
        mcnn = VocosInverter(p.vocos).eval()
        torch.nn.init.normal_(mcnn.offset_up.weight, 0.0, 0.5)
        inverter = "vocos"
    elif inverter in ("vocos_mm", "vocos_mmm", "vocos_gl"):  # two rounds of Mel matching after the inverse
        # STFT; three, the third with momentum; one, then three Griffin-Lim iterations
        mm = {"vocos_mm": {"mel_match": 2}, "vocos_mmm": {"mel_match": 3, "mel_match_momentum": 0.9},
              "vocos_gl": {"mel_match": 1, "gl_iters": 3}}[inverter]
        p = dataclasses.replace(p, vocos=dataclasses.replace(p.vocos, **mm))
        mcnn = VocosInverter(p.vocos, p.mel).eval()
        inverter = "vocos"
    elif inverter == "vocos":
        mcnn = VocosInverter(p.vocos).eval()
    for m in wae.modules():  # per-class FiLM starts as the identity; make the class matter, as after training
        if isinstance(m, ConditionalBatchNorm2d):
            torch.nn.init.normal_(m.scale.weight, 1.0, 0.3)
            torch.nn.init.normal_(m.shift.weight, 0.0, 0.3)
    fe = MelFrontend(p.mel)
    clips = torch.stack([torch.from_numpy(np.pad(synth(c, seed=i), (0, 22016))[:22016])
                         for i, c in enumerate(CLASSES)])
    std = Standardiser.fit(fe(clips))
    if inverter == "vocos":
        v = p.vocos
        mcnn.mel_prior.copy_(mel_prior_matrix(p.mel, v.n_fft, fe.mel(clips),
                                              stft_magnitude(clips, v.n_fft, v.istft_hop, v.n_fft)))
    clf = DrumClassifier(ClassifierConfig(n_mels=p.mel.n_mels, n_frames=p.wae.n_frames)).eval()
    z = torch.randn(200, p.wae.latent_dim)
    pca = {"all": PCA.fit(z)} | {c: PCA.fit(z[i::11] + i) for i, c in enumerate(CLASSES)}
    save_bundle(out, audio=p.audio, mel=p.mel, wae=wae, inverter=mcnn, standardiser=std, classes=list(CLASSES),
                pca=pca, classifier=clf, extra={"metrics": {"note": "random weights"}})
    return out
