"""Audio I/O and the Mel front end (``audio.mel``, imported on first use: I/O alone needs no torch)."""
from .io import (AudioError, align_onset, check_signal, fit_length, load, normalise_peak, onset_index,
                 prepare_clip, resample, save_wav)


__all__ = ["AudioError", "align_onset", "check_signal", "fit_length", "load", "normalise_peak", "onset_index",
           "prepare_clip", "resample", "save_wav", "MelFrontend", "Standardiser", "mel_filterbank"]


def __getattr__(name: str):
    if name in ("MelFrontend", "Standardiser", "mel_filterbank"):
        from . import mel

        return getattr(mel, name)
    raise AttributeError(name)
