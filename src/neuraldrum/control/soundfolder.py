"""The folder of WAVs a live server hands out by path (OSC replies): bounded, recycled, written atomically.

Files are named ``nd_000001.wav``, ``nd_000002.wav``, … . Once more than ``max_files`` files or ``max_bytes``
bytes are kept, the oldest are deleted (a client has long read them by then). Files of this pattern left by
an earlier server are taken over and count toward the bounds; nothing else in the folder is touched. The same
sound asked for again gets the same file while that file is kept, so a pad held still writes nothing.
"""
from __future__ import annotations

import collections
import re
import threading
from pathlib import Path
from typing import Hashable, Optional, Union

import numpy as np

from ..audio.io import save_wav

NAME = re.compile(r"nd_(\d{6,})\.wav")


class SoundFolder:
    """Write sounds into ``root`` with bounded disk use. Thread-safe.

    Args:
        root: the folder (created when missing).
        max_files: files kept at most (oldest deleted first).
        max_bytes: bytes kept at most (oldest deleted first); one file may exceed it alone.
    """

    def __init__(self, root: Union[str, Path], max_files: int = 256, max_bytes: int = 64 * 2 ** 20):
        if isinstance(max_files, bool) or not isinstance(max_files, int) or max_files < 1:
            raise ValueError(f"max_files={max_files!r} must be a whole number ≥ 1")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes={max_bytes!r} must be a whole number ≥ 1")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise FileExistsError(f"{self.root}: exists and is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_files, self.max_bytes = max_files, max_bytes
        self._lock = threading.Lock()
        self._files: collections.OrderedDict[Path, int] = collections.OrderedDict()  # oldest first: size
        self._by_key: dict[Hashable, Path] = {}
        self._key_of: dict[Path, Hashable] = {}
        found = sorted((int(m.group(1)), p) for p in self.root.iterdir() if (m := NAME.fullmatch(p.name)))
        for _, p in found:
            self._files[p] = p.stat().st_size
        self._next = found[-1][0] + 1 if found else 1
        with self._lock:
            self._trim()

    def write(self, wave: np.ndarray, sample_rate: int, key: Optional[Hashable] = None) -> Path:
        """Save ``wave`` (N,) as a new 16-bit WAV and return its path; with ``key``, a file still kept for the
        same key is returned instead of writing again."""
        with self._lock:
            if key is not None:
                old = self._by_key.get(key)
                if old is not None and old in self._files and old.is_file():
                    self._files.move_to_end(old)
                    return old
            path = self.root / f"nd_{self._next:06d}.wav"
            self._next += 1
        save_wav(path, wave, sample_rate)  # atomic: a reader sees the whole file or none
        with self._lock:
            self._files[path] = path.stat().st_size
            if key is not None:
                self._by_key[key] = path
                self._key_of[path] = key
            self._trim()
        return path

    def _trim(self) -> None:
        while len(self._files) > 1 and (len(self._files) > self.max_files or
                                        sum(self._files.values()) > self.max_bytes):
            path, _ = self._files.popitem(last=False)
            key = self._key_of.pop(path, None)
            if key is not None and self._by_key.get(key) == path:
                del self._by_key[key]
            path.unlink(missing_ok=True)

    def stats(self) -> dict:
        """Files and bytes kept now."""
        with self._lock:
            return {"files": len(self._files), "bytes": sum(self._files.values())}
