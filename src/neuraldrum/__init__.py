"""neuraldrum: a real-time neural drum machine (conditional WAE + multi-head CNN inverter) on a CPU."""
__version__ = "0.1.0"
# What the inference graphs compute (graphs.py): bumped whenever their output for the same bundle changes, so an
# export made before is not mistaken for a current one (the playing engine's ONNX cache keys on it).
# 1: binarised MCNN mask; 2: the trained soft mask with a one-hop release (models.mcnn.gate); 3: the ONNX graphs'
# inverse FFT as matrix products (models.vocos.ISTFT.factored: the same sound to float rounding, faster); 4: a
# Vocos-style inverter may match its output to the Mel (mel_match: a config, no weights), so the default of
# 2026-11-28 has the weights of the one before and plays differently; 5: the decoded log-Mel is capped at the
# loudest a sound within ±1 can have (graphs.loudest_log_mel: far-out latents made NaN; ordinary sounds are
# unchanged), and Griffin-Lim iterations silence frames 100 dB under the clip's loudest.
GRAPHS_REVISION = 5

from .taxonomy import CLASSES  # noqa: E402  (after the version constants, which it does not need)

__all__ = ["CLASSES", "GRAPHS_REVISION", "__version__"]
