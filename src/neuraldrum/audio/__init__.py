"""Audio I/O and the Mel front end."""
from .io import (AudioError, align_onset, check_signal, fit_length, load, normalise_peak, onset_index,
                 prepare_clip, resample, save_wav)
from .mel import MelFrontend, Standardiser, mel_filterbank

__all__ = ["AudioError", "align_onset", "check_signal", "fit_length", "load", "normalise_peak", "onset_index",
           "prepare_clip", "resample", "save_wav", "MelFrontend", "Standardiser", "mel_filterbank"]
