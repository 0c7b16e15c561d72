"""Build a corpus folder from drum libraries and sample folders (see :mod:`neuraldrum.data.corpus` for reading).

The recipe, in order:

1. list candidates from every source (:mod:`neuraldrum.data.sources`); the taxonomy labels or excludes them;
2. load (or render) each labelled candidate and prepare it: mono, 22.05 kHz, onset-aligned, cut to
   ``n_samples`` with a fade, peak-normalised (the original peak is kept);
3. drop exact duplicates (same samples) and near duplicates (:func:`fingerprints` correlate above
   ``near_threshold``), keeping the copy that sorts first;
4. group clips that must not be split apart: the layers of one (source, kit, instrument), items that
   share a recording (one file used by two instruments, one SoundFont sample on several notes), and
   clips whose fingerprints correlate above ``link_threshold``;
5. split groups into train/val/test per class, in an order given by a hash of the group and the seed; groups
   holding a clip of a ``train_only`` source (by default the synthesised DrumSynth clips) all go to train;
6. with ``pool``: the unlabelled pool, for the inverters (which need no labels): the items excluded only because
   no class fits them (hand drums, GM notes outside the taxonomy, timpani, guiro, zaps, names without a class
   keyword: :data:`POOL_REASONS`), prepared the same way, less exact and near duplicates and less anything that
   correlates above ``link_threshold`` with a validation or test clip (so no held-out sound reaches training);
7. write ``audio.npy``, ``manifest.jsonl``, ``build.json`` (and ``pool.npy``, ``pool.jsonl``) into a temporary
   folder and swap it in.

Every excluded item is listed in ``build.json`` with its reason.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import __version__
from ..atomic import atomic_folder
from ..audio.io import (AudioError, PathLike, atomic_save_npy, atomic_write_text, fade_curve, prepare_clip,
                        safe_text)
from ..taxonomy import CLASS_INDEX, CLASSES, HIGH_HZ, LOW_HZ, SPECTRAL_LIMITS
from .candidate import Candidate
from .corpus import CORPUS_FORMAT, SPLITS, SYNTHETIC_SOURCES
from .sources import ALL_SOURCES, APT_PACKAGES, SOURCE_RANK, SOURCES, available_sources, iter_candidates

# Thresholds on the fingerprint correlation, read off the Debian libraries. Copies of one recording (gain-only
# velocity layers, a FluidR3 sample reused by several kits, the AVL samples inside two Hydrogen kits,
# int16 re-quantisation) correlate at 0.9971 or more; the closest distinct hits (velocity layers of one
# tom) at 0.9965 or less. Clips above NEAR_DUPLICATE are dropped; clips above LINK_SIMILAR are kept but
# forced into one split, so a clip that falls on the wrong side of the narrow gap costs a redundant or a
# lost layer, never a leak between train and test.
NEAR_DUPLICATE = 0.997
LINK_SIMILAR = 0.98
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
CORPUS_FILES = ("audio.npy", "manifest.jsonl", "build.json", "pool.npy", "pool.jsonl")
# exclusion reasons (as :func:`_reason_category` writes them) of percussive sounds that only lack a class: the
# unlabelled pool takes them. Not: empty or unnamed slots, tonal kits and samples, loops, rolls, ambient samples.
POOL_REASONS = ("hand drum", "GM note N not in the taxonomy", "no class keyword", "tonal/orchestral percussion",
                "non-drum percussion", "zap/fx", "choke/swish", "whistle")
TRAIN_ONLY = SYNTHETIC_SOURCES  # synthesised clips train the model but are never validated or tested on


# ---------------------------------------------------------------- fingerprints

def _band_starts(n_fft: int, sample_rate: int, n_bands: int, fmin: float = 30.0) -> np.ndarray:
    """First FFT bin of each of (up to) ``n_bands`` log-spaced bands from ``fmin`` to Nyquist; bands
    narrower than a bin merge, so the result is strictly increasing."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = np.searchsorted(freqs, np.geomspace(fmin, sample_rate / 2, n_bands + 1)[:-1])
    return np.unique(edges)


def fingerprints(clips: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int = 512, n_bands: int = 32,
                 range_db: float = 70.0, chunk: int = 256) -> np.ndarray:
    """Compact, gain-free descriptions of peak-normalised clips for near-duplicate search.

    A log-band spectrogram (Hann 1024, hop 512, up to 32 log-spaced bands from 30 Hz; dB floored ``range_db``
    below the clip's loudest cell), mean-removed and unit-normalised, so that the dot product of two
    fingerprints is their correlation.

    Args:
        clips: (N, n_samples) float32.
    Returns:
        (N, n_frames · bands) float32 with unit rows.
    """
    n_frames = 1 + (clips.shape[1] - n_fft) // hop
    window = np.hanning(n_fft).astype(np.float32)
    starts = _band_starts(n_fft, sample_rate, n_bands)
    width = np.diff(np.append(starts, n_fft // 2 + 1)).astype(np.float32)
    out = np.empty((clips.shape[0], n_frames * starts.size), np.float32)
    for i in range(0, clips.shape[0], chunk):
        x = np.asarray(clips[i: i + chunk], dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=1)[:, ::hop][:, :n_frames] * window
        power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # (b, frames, bins)
        bands = np.add.reduceat(power, starts, axis=-1) / width  # mean power per band (no BLAS: threads stay idle)
        db = 10 * np.log10(np.maximum(bands, 1e-12)).reshape(len(x), -1)
        db = np.maximum(db, db.max(axis=1, keepdims=True) - range_db)
        db -= db.mean(axis=1, keepdims=True)
        out[i: i + len(x)] = db / np.maximum(np.linalg.norm(db, axis=1, keepdims=True), 1e-9)
    return out


def similar_pairs(fp: np.ndarray, threshold: float, block: int = 1024) -> list[tuple[int, int, float]]:
    """All pairs of rows ``i < j`` whose fingerprints correlate above ``threshold``, computed in blocks so
    that a large corpus never needs the full (N, N) matrix. Returns [(i, j, correlation)] sorted by j, i."""
    pairs = []
    for start in range(0, fp.shape[0], block):
        sim = fp[start: start + block] @ fp[: start + block].T  # (b, start + b)
        jj, ii = np.nonzero(sim > threshold)
        for j, i in zip(jj + start, ii):
            if i < j:
                pairs.append((int(i), int(j), float(sim[j - start, i])))
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def near_duplicates(pairs: list[tuple[int, int, float]], threshold: float) -> dict[int, tuple[int, float]]:
    """Greedy removal in row order: row j goes when it correlates above ``threshold`` with an earlier row
    that stays. ``pairs`` from :func:`similar_pairs`. Returns {dropped row: (kept row, correlation)}."""
    dropped: dict[int, tuple[int, float]] = {}
    for i, j, s in pairs:  # sorted by j: when j's pairs come, every earlier row's fate is settled
        if s > threshold and i not in dropped and s > dropped.get(j, (-1, -1.0))[1]:
            dropped[j] = (i, s)
    return dropped


MIN_SOUNDING_S = 0.002  # a clip with less of it within 60 dB of its peak is a broken file or a tick, not a drum


def implausible(clip: np.ndarray, cls: str, sample_rate: int) -> Optional[str]:
    """Why ``clip`` cannot be a ``cls`` (:data:`neuraldrum.taxonomy.SPECTRAL_LIMITS`), or None.

    Args:
        clip: (n_samples,) float32.
    """
    if cls not in SPECTRAL_LIMITS:
        return None
    max_low, min_high = SPECTRAL_LIMITS[cls]
    power = np.abs(np.fft.rfft(clip)) ** 2
    freqs = np.fft.rfftfreq(clip.size, 1.0 / sample_rate)
    total = float(power.sum()) or 1.0
    low, high = float(power[freqs < LOW_HZ].sum()) / total, float(power[freqs > HIGH_HZ].sum()) / total
    if low > max_low:
        return f"{low:.0%} of the energy below {LOW_HZ:g} Hz"
    if high < min_high:
        return f"{high:.2%} of the energy above {HIGH_HZ:g} Hz"
    return None


# ---------------------------------------------------------------- groups and split

def _hash(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()


def split_groups(items: Sequence[Candidate], seed: int = 0, links: Sequence[tuple[int, int]] = (),
                 fractions: dict[str, float] = SPLIT_FRACTIONS,
                 train_only: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Assign each item a split so that no group straddles two splits, stratified per class.

    Groups are the connected items: same (source, kit, instrument), same ``link``, or a pair of item
    indices in ``links`` (similar sounds). Each group counts for its most common class. Per class, groups
    are visited in the order of a hash of (seed, group) and each goes to the split furthest below its
    share (ties: test, val, train), so a class with three groups or more gets val and test clips.
    Items of a ``train_only`` source all go to train, grouped only among themselves; the other items are
    split exactly as if they were alone (links between the two kinds are ignored here: see
    :func:`train_only_conflicts`). Nothing depends on the order of ``items``.

    Returns:
        (split name per item, group key per item).
    """
    if any(it.source in train_only for it in items):
        split, group = ["train"] * len(items), [""] * len(items)
        for forced in (False, True):
            idx = [i for i, it in enumerate(items) if (it.source in train_only) == forced]
            pos = {i: k for k, i in enumerate(idx)}
            sub = [(pos[a], pos[b]) for a, b in links if a in pos and b in pos]
            s, g = split_groups([items[i] for i in idx], seed, sub, fractions)
            for k, i in enumerate(idx):
                split[i], group[i] = ("train" if forced else s[k]), g[k]
        return split, group
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    for a, b in links:
        union(a, b)
    first: dict[object, int] = {}
    for i, it in enumerate(items):
        for key in (("g",) + it.group, ("l", it.link) if it.link else None):
            if key is None:
                continue
            if key in first:
                union(i, first[key])
            else:
                first[key] = i
    members: dict[int, list[int]] = {}
    for i in range(len(items)):
        members.setdefault(find(i), []).append(i)
    # a group's name: the smallest (source, kit, instrument) in it, so it does not depend on item order
    name = {r: min("\x1f".join(items[i].group) for i in idx) for r, idx in members.items()}
    by_class: dict[str, list[int]] = {}
    for r, idx in members.items():
        labels = sorted(items[i].label for i in idx)
        top = max(labels, key=lambda c: (labels.count(c), -CLASS_INDEX[c]))
        by_class.setdefault(top, []).append(r)
    split = [""] * len(items)
    order = ("test", "val", "train")
    for cls in sorted(by_class):
        roots = sorted(by_class[cls], key=lambda r: _hash(seed, name[r]))
        total = sum(len(members[r]) for r in roots)
        count = {s: 0 for s in order}
        for r in roots:
            want = {s: fractions[s] * total for s in order}
            s = max(order, key=lambda s: ((want[s] - count[s]) / want[s] if want[s] else -1.0, -order.index(s)))
            count[s] += len(members[r])
            for i in members[r]:
                split[i] = s
    group = [_hash(name[find(i)])[:12] for i in range(len(items))]
    return split, group


def train_only_conflicts(items: Sequence[Candidate], split: Sequence[str], links: Sequence[tuple[int, int]],
                         train_only: Sequence[str]) -> dict[int, int]:
    """Items of a ``train_only`` source linked to a val or test item of another source (a similar sound that
    would leak into training): {item: the val/test item}."""
    out: dict[int, int] = {}
    for a, b in links:
        for i, j in ((a, b), (b, a)):
            if items[i].source in train_only and items[j].source not in train_only and split[j] != "train":
                out.setdefault(i, j)
    return out


# ---------------------------------------------------------------- the build

def _reason_category(reason: str) -> str:
    """"unreadable (LibsndfileError: …)" → "unreadable"; "GM note 71 not in …" → "GM note N not in …"."""
    return re.sub(r"\d+", "N", re.sub(r"\s*\(.*\)\s*$", "", reason)) or reason


def _exclusion(c: Candidate, reason: str, detail: Optional[str] = None) -> dict:
    return {"id": c.id, "source": c.source, "kit": c.kit, "instrument": c.instrument, "layer": c.layer,
            "path": c.path, "class": c.label, "reason": _reason_category(reason), "detail": detail or reason}


def _resolve_sources(sources: Optional[Sequence[str]], folders: Sequence[PathLike],
                     extra: Sequence[str] = ()) -> list[str]:
    for f in folders:
        if not Path(f).expanduser().is_dir():
            what = "a file, not a folder" if Path(f).expanduser().exists() else "no such folder"
            raise FileNotFoundError(f"--folder {safe_text(os.fsdecode(f))}: {what}")
    have = available_sources()
    if sources is None:
        chosen, check = [s for s in SOURCES if have[s]], list(extra)
        if not chosen and not folders and not extra:
            pkgs = " ".join(APT_PACKAGES[s] for s in SOURCES)
            raise FileNotFoundError("no drum library found and no --folder given; install the libraries with "
                                    f"`sudo apt-get install {pkgs}` or pass --folder PATH")
    else:
        chosen, check = list(sources), list(sources) + list(extra)
    for s in check:
        if s not in ALL_SOURCES:
            raise ValueError(f"unknown source {s!r}; choose from {', '.join(ALL_SOURCES)}")
        if not have.get(s, False):
            raise FileNotFoundError(f"source {s!r} is not installed; `sudo apt-get install {APT_PACKAGES[s]}`")
    chosen += [s for s in extra if s not in chosen]
    return chosen


def build_corpus(out_dir: PathLike, sources: Optional[Sequence[str]] = None, folders: Sequence[PathLike] = (),
                 folder_class: Optional[str] = None, sample_rate: int = 22050, n_samples: int = 22016,
                 seed: int = 0, progress: bool = True, fade_ms: float = 10.0, max_seconds: float = 60.0,
                 fade_shape: str = "cosine",
                 near_threshold: float = NEAR_DUPLICATE, link_threshold: float = LINK_SIMILAR,
                 extra_sources: Sequence[str] = (), drumsynth_variants: int = 0, drumsynth_seed: int = 0,
                 train_only: Sequence[str] = TRAIN_ONLY, pool: bool = False,
                 hydrogen_kits: Sequence[str] = ()) -> dict:
    """Build a corpus into ``out_dir`` and return its ``build.json`` content.

    Args:
        out_dir: the corpus folder; replaced if it holds a corpus, refused if it holds anything else.
        sources: library names (:data:`~neuraldrum.data.sources.ALL_SOURCES`); None = every installed default
            library (:data:`~neuraldrum.data.sources.SOURCES`); () = folders only.
        extra_sources: added to ``sources`` (e.g. ``("drumsynth",)`` on top of the default libraries).
        folders: sample folders to add (:func:`neuraldrum.data.sources.folder_samples`).
        folder_class: label every folder file with this class instead of reading names.
        sample_rate, n_samples: clip format; clips are (n_samples,) at sample_rate.
        fade_ms, fade_shape: the fade-out of a sound cut at n_samples (:func:`neuraldrum.audio.io.fade_curve`).
        seed: changes the split (not the ids).
        progress: show a tqdm progress bar on stderr.
        near_threshold: fingerprint correlation above which two clips are near duplicates (one is dropped).
        link_threshold: fingerprint correlation above which two clips must share a split.
        drumsynth_variants, drumsynth_seed: jittered variants per labelled DrumSynth preset, and their seed
            (:func:`neuraldrum.data.drumsynth.variant`); variants share their preset's split.
        train_only: sources whose clips (and everything grouped with them) all go to the train split.
        pool: also write the unlabelled pool (step 6 of the module docstring) as ``pool.npy``/``pool.jsonl``;
            the labelled corpus is the same with or without it.
        hydrogen_kits: Hydrogen kit folders to read besides those of the Debian packages the build names
            (:data:`~neuraldrum.data.sources.HYDROGEN_PACKAGES`); the kits read, with their packages, are listed in
            ``build.json`` (``hydrogen_kits``), so another machine's extra kits never slip into the corpus.
    Raises:
        FileNotFoundError: nothing to build from, or a folder that does not exist.
        ValueError: bad options, or no clip survived.
    """
    t0 = time.time()
    if sample_rate <= 0 or n_samples <= 0:
        raise ValueError(f"sample_rate and n_samples must be positive, not {sample_rate} and {n_samples}")
    fade_curve(2, fade_shape)  # a wrong shape fails here, before anything is read
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    chosen = _resolve_sources(sources, folders, extra_sources)
    if drumsynth_variants and "drumsynth" not in chosen:
        raise ValueError("drumsynth_variants needs the drumsynth source")
    if hydrogen_kits and "hydrogen" not in chosen:
        raise ValueError("--hydrogen-kit needs the hydrogen source")
    kits_read: list[dict] = []
    cands = sorted(iter_candidates(chosen, folders, folder_class, drumsynth_variants, drumsynth_seed,
                                   hydrogen_kits, kits_read),
                   key=lambda c: (SOURCE_RANK[c.source], c.order, c.id))
    exclusions: list[dict] = []
    seen_ids: set[str] = set()
    todo: list[Candidate] = []
    pool_todo: list[Candidate] = []
    for c in cands:
        if c.id in seen_ids:
            exclusions.append(_exclusion(c, "duplicate id"))
        elif c.label is None:
            exclusions.append(_exclusion(c, c.rule))
            if pool and c.load is not None and _reason_category(c.rule) in POOL_REASONS:
                pool_todo.append(c)
        else:
            todo.append(c)
        seen_ids.add(c.id)

    def load_clip(c: Candidate) -> tuple[np.ndarray, float]:
        return prepare_clip(c.load(sample_rate, max_seconds), n_samples, sample_rate, fade_ms, c.path, fade_shape)

    def plausible(c: Candidate, clip: np.ndarray) -> Optional[tuple[str, str]]:
        sounding = int(np.count_nonzero(np.abs(clip) > 1e-3 * np.abs(clip).max()))  # within 60 dB of the peak
        if sounding < MIN_SOUNDING_S * sample_rate:
            return "too short", f"{sounding} samples within 60 dB of the peak (under {MIN_SOUNDING_S * 1e3:g} ms)"
        why = implausible(clip, c.label, sample_rate)
        return ("implausible spectrum for the class", f"{c.label}: {why}") if why else None

    by_path: dict[str, str] = {}
    by_digest: dict[str, str] = {}
    kept, clips, peaks = _load_distinct(todo, load_clip, by_path, by_digest, exclusions, plausible,
                                        desc="corpus", progress=progress)
    if not kept:
        raise ValueError("no usable clip: every candidate was excluded "
                         f"({_summary(exclusions)})")

    audio = np.stack(clips)
    pairs = similar_pairs(fingerprints(audio, sample_rate), min(near_threshold, link_threshold))
    drop = near_duplicates(pairs, near_threshold)
    for j, (i, s) in sorted(drop.items()):
        exclusions.append(_exclusion(kept[j], "near duplicate", f"correlation {s:.4f} with {kept[i].id}"))
    keep = [i for i in range(len(kept)) if i not in drop]
    new_index = {old: new for new, old in enumerate(keep)}
    links = [(new_index[i], new_index[j]) for i, j, s in pairs if s > link_threshold and i in new_index
             and j in new_index]
    kept, audio, peaks = [kept[i] for i in keep], audio[keep], [peaks[i] for i in keep]

    splits, groups = split_groups(kept, seed, links, train_only=train_only)
    conflicts = train_only_conflicts(kept, splits, links, train_only)
    for i, j in sorted(conflicts.items()):
        exclusions.append(_exclusion(kept[i], f"similar to a {splits[j]} clip", f"linked to {kept[j].id}"))
    if conflicts:
        keep = [i for i in range(len(kept)) if i not in conflicts]
        kept, audio, peaks = [kept[i] for i in keep], audio[keep], [peaks[i] for i in keep]
        splits, groups = [splits[i] for i in keep], [groups[i] for i in keep]
    order = sorted(range(len(kept)), key=lambda i: (CLASS_INDEX[kept[i].label], SOURCE_RANK[kept[i].source],
                                                    kept[i].kit, kept[i].instrument, kept[i].layer, kept[i].id))
    rows = []
    for row, i in enumerate(order):
        c = kept[i]
        rows.append({"id": c.id, "index": row, "class": c.label, "source": c.source, "kit": c.kit,
                     "instrument": c.instrument, "layer": c.layer, "velocity": c.velocity, "path": c.path,
                     "split": splits[i], "group": groups[i], "peak": round(peaks[i], 6), "rule": c.rule})
    audio = np.ascontiguousarray(audio[order], dtype=np.float32)
    pool_out = None
    if pool:
        held_out = np.asarray([r["split"] != "train" for r in rows])
        pool_out = _build_pool(pool_todo, load_clip, audio[held_out],
                               [r["id"] for r, h in zip(rows, held_out) if h], by_path, by_digest, sample_rate,
                               n_samples, near_threshold, link_threshold, progress)
    info = {
        "format": CORPUS_FORMAT,
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": {"sample_rate": sample_rate, "n_samples": n_samples, "fade_ms": fade_ms, "fade_shape": fade_shape,
                    "max_seconds": max_seconds, "seed": seed, "sources": chosen,
                    "folders": [safe_text(str(Path(f).expanduser().resolve())) for f in folders],
                    "folder_class": folder_class, "near_threshold": near_threshold,
                    "link_threshold": link_threshold, "split_fractions": SPLIT_FRACTIONS,
                    "drumsynth_variants": drumsynth_variants, "drumsynth_seed": drumsynth_seed,
                    "train_only_sources": sorted(set(train_only) & set(chosen)), "pool": pool,
                    "hydrogen_kits": sorted(hydrogen_kits)},
        "hydrogen_kits": sorted(kits_read, key=lambda k: k["folder"]),  # each kit read, with its package
        "n_clips": len(rows),
        "classes": list(CLASSES),
        "counts": _counts(rows),
        "exclusion_counts": _summary(exclusions),
        "exclusions": exclusions,
        "audio_sha256": hashlib.sha256(audio.tobytes()).hexdigest(),
    }
    if pool_out is not None:
        info["pool"] = pool_out[2]
    info["build_seconds"] = round(time.time() - t0, 2)
    _write(out_dir, audio, rows, info, pool_out)
    return info


def _load_distinct(cands: Sequence[Candidate], load_clip, by_path: dict[str, str], by_digest: dict[str, str],
                   excluded: list[dict], check=None, desc: str = "corpus",
                   progress: bool = True) -> tuple[list[Candidate], list[np.ndarray], list[float]]:
    """Each candidate's prepared clip (``load_clip(c)`` → (clip, original peak)), less files and clips seen
    before (``by_path``, ``by_digest``: {path or clip digest: id}, extended here), unreadable ones and those
    ``check(c, clip)`` refuses (it returns (reason, detail) or None); each one left out goes to ``excluded``.
    Returns the kept candidates, their clips and peaks."""
    from tqdm import tqdm

    kept: list[Candidate] = []
    clips: list[np.ndarray] = []
    peaks: list[float] = []
    for c in tqdm(cands, desc=desc, unit="clip", disable=not progress, dynamic_ncols=True):
        if c.path in by_path:
            excluded.append(_exclusion(c, "exact duplicate", f"same file as {by_path[c.path]}"))
            continue
        by_path[c.path] = c.id
        try:
            clip, peak = load_clip(c)
        except AudioError as e:
            excluded.append(_exclusion(c, e.reason))
            continue
        refused = check(c, clip) if check is not None else None
        if refused:
            excluded.append(_exclusion(c, *refused))
            continue
        digest = hashlib.sha1(clip.tobytes()).hexdigest()
        if digest in by_digest:
            excluded.append(_exclusion(c, "exact duplicate", f"same samples as {by_digest[digest]}"))
            continue
        by_digest[digest] = c.id
        kept.append(c)
        clips.append(clip)
        peaks.append(peak)
    return kept, clips, peaks


def _build_pool(cands: list[Candidate], load_clip, held_audio: np.ndarray, held_ids: list[str],
                by_path: dict[str, str], by_digest: dict[str, str], sample_rate: int, n_samples: int,
                near_threshold: float, link_threshold: float, progress: bool) -> tuple[np.ndarray, list[dict], dict]:
    """The unlabelled pool (module docstring, step 6): (audio (P, n_samples), rows, summary with every item
    left out and why). ``load_clip`` prepares a clip as the corpus does; ``by_path``/``by_digest`` hold the
    labelled corpus's files and clips (extended here)."""
    left_out: list[dict] = []
    kept, clips, peaks = _load_distinct(cands, load_clip, by_path, by_digest, left_out, desc="pool",
                                        progress=progress)
    H = len(held_audio)
    audio = np.stack(clips) if clips else np.zeros((0, n_samples), np.float32)
    drop: dict[int, tuple[str, str]] = {}
    if len(audio):
        both = np.concatenate([held_audio, audio]) if H else audio
        pairs = similar_pairs(fingerprints(both, sample_rate), min(near_threshold, link_threshold))
        for i, j, s in pairs:  # i < j: a held-out clip is always i
            if i < H <= j and s > link_threshold and (j - H) not in drop:
                drop[j - H] = ("similar to a held-out clip", f"correlation {s:.4f} with {held_ids[i]}")
        within = [(i - H, j - H, s) for i, j, s in pairs if i >= H]
        for j, (i, s) in near_duplicates(within, near_threshold).items():
            drop.setdefault(j, ("near duplicate", f"correlation {s:.4f} with {kept[i].id}"))
    for j, (reason, detail) in sorted(drop.items()):
        left_out.append(_exclusion(kept[j], reason, detail))
    keep = [i for i in range(len(kept)) if i not in drop]
    rows = [{"id": kept[i].id, "index": n, "source": kept[i].source, "kit": kept[i].kit,
             "instrument": kept[i].instrument, "layer": kept[i].layer, "path": kept[i].path,
             "peak": round(peaks[i], 6), "rule": kept[i].rule} for n, i in enumerate(keep)]
    summary = {"n_clips": len(rows), "reasons": _summary([{"reason": _reason_category(r["rule"])} for r in rows]),
               "left_out_counts": _summary(left_out), "left_out": left_out}
    return np.ascontiguousarray(audio[keep], dtype=np.float32), rows, summary


def _counts(rows: list[dict]) -> dict:
    """{class: {source: {split: n}}} over every class, the sources present and every split."""
    srcs = sorted({r["source"] for r in rows}, key=lambda s: SOURCE_RANK[s])
    counts = {c: {s: {sp: 0 for sp in SPLITS} for s in srcs} for c in CLASSES}
    for r in rows:
        counts[r["class"]][r["source"]][r["split"]] += 1
    return counts


def _summary(exclusions: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in exclusions:
        out[e["reason"]] = out.get(e["reason"], 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        other = sorted(p.name for p in out_dir.iterdir() if p.name not in CORPUS_FILES)
        if other:
            raise FileExistsError(f"{out_dir}: holds files that are not a corpus ({', '.join(other[:3])}); "
                                  "choose a new or empty folder")


def _write(out_dir: Path, audio: np.ndarray, rows: list[dict], info: dict,
           pool: Optional[tuple[np.ndarray, list[dict], dict]] = None) -> None:
    """Write the three files into a fresh folder beside ``out_dir``, then swap it in; on failure nothing
    of the new corpus is left and an old corpus stays as it was. Text is UTF-8: the bytes of a file name that
    is not are written as ``\\xff``-style escapes (:func:`neuraldrum.audio.io.safe_text`)."""
    with atomic_folder(out_dir.absolute()) as tmp:
        atomic_save_npy(tmp / "audio.npy", audio)
        atomic_write_text(tmp / "manifest.jsonl",
                          "".join(json.dumps(_jsonable(r), ensure_ascii=False) + "\n" for r in rows))
        atomic_write_text(tmp / "build.json", json.dumps(_jsonable(info), indent=1, ensure_ascii=False) + "\n")
        if pool is not None:
            atomic_save_npy(tmp / "pool.npy", pool[0])
            atomic_write_text(tmp / "pool.jsonl",
                              "".join(json.dumps(_jsonable(r), ensure_ascii=False) + "\n" for r in pool[1]))


def _jsonable(x: object) -> object:
    """``x`` with every string through :func:`~neuraldrum.audio.io.safe_text` (the sources already do it: this
    is so that no name can make the write fail)."""
    if isinstance(x, str):
        return safe_text(x)
    if isinstance(x, dict):
        return {safe_text(str(k)): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x
