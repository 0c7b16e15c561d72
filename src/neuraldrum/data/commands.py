"""The ``neuraldrum data`` verbs: ``build`` a corpus, print its ``stats``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from ..taxonomy import CLASSES
from .corpus import SPLITS, load_corpus, untrained_classes
from .sources import ALL_SOURCES, HYDROGEN_PACKAGES, OTHER_PACKAGE, SOURCE_RANK, SOURCES

# exclusions of a whole folder, kit or SoundFont rather than of one clip: printed as warnings too
WARN_REASONS = ("unreadable folder", "linked folder listed already", "unreadable drumkit.xml", "unreadable SoundFont",
                OTHER_PACKAGE)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data build`` and ``data stats`` to the ``neuraldrum`` command."""
    data = subparsers.add_parser("data", help="build and inspect the training corpus",
                                 description="Build and inspect the training corpus.")
    verbs = data.add_subparsers(dest="data_command", metavar="VERB")
    data.set_defaults(func=lambda args: _usage(data))

    b = verbs.add_parser("build", help="build a corpus from the drum libraries and sample folders",
                         description="Build a corpus (1 s clips, labels, grouped train/val/test split) from the "
                                     "Debian drum libraries and your own sample folders.")
    b.add_argument("--out", required=True, metavar="DIR", help="corpus folder to write (replaced if it is one)")
    b.add_argument("--folder", action="append", default=[], metavar="PATH",
                   help="a folder of samples to add, labelled from file and folder names (repeatable)")
    b.add_argument("--class", dest="folder_class", choices=CLASSES, metavar="CLS",
                   help=f"label every --folder file as this class ({', '.join(CLASSES)})")
    b.add_argument("--hydrogen-kit", action="append", default=[], metavar="NAME",
                   help=f"also read this Hydrogen kit folder (repeatable); by default only the kits of "
                        f"{', '.join(HYDROGEN_PACKAGES)} are read, whatever else is installed beside them")
    b.add_argument("--sources", metavar="LIST",
                   help=f"comma-separated libraries to use ({','.join(ALL_SOURCES)}), or 'none' for folders only; "
                        f"default: every installed one of {','.join(SOURCES)}")
    b.add_argument("--with-drumsynth", action="store_true",
                   help="add the LMMS DrumSynth presets, rendered (source 'drumsynth', package lmms-common) to the "
                        "libraries; every DrumSynth clip goes to the train split, so val and test stay recordings "
                        "(see --drumsynth-in-eval)")
    b.add_argument("--drumsynth-variants", type=int, default=0, metavar="K",
                   help="K parameter-jittered variants per labelled DrumSynth preset, in its preset's split "
                        "(default 0; K > 0 implies --with-drumsynth)")
    b.add_argument("--drumsynth-seed", type=int, default=0, metavar="N",
                   help="seed of the DrumSynth variants (default 0): the same K and seed give the same clips and ids")
    b.add_argument("--drumsynth-in-eval", action="store_true",
                   help="split DrumSynth clips into train/val/test like the recordings instead of all into train")
    b.add_argument("--sample-rate", type=int, default=22050, metavar="HZ",
                   help="clip sample rate (default 22050; 44100 for the 44.1 kHz models)")
    b.add_argument("--n-samples", type=int, default=None, metavar="N",
                   help="clip length in samples (default: 22016 at 22.05 kHz, 44032 at 44.1 kHz: 86 Mel hops)")
    b.add_argument("--fade-ms", type=float, default=None, metavar="MS",
                   help="fade-out where a longer sound is cut (default 10, or 300 with --fade-shape decay)")
    b.add_argument("--fade-shape", choices=("cosine", "decay"), default="cosine",
                   help="cosine: a quick cut; decay: the ring falls 60 dB over the fade, as if damped "
                        "(default cosine)")
    b.add_argument("--pool", action="store_true",
                   help="also keep an unlabelled pool for the inverters (pool.npy): sounds excluded only because no "
                        "class fits them (hand drums, other GM percussion, timpani, zaps, unnamed hits), less "
                        "duplicates and anything like a validation or test clip; the labelled corpus is unchanged")
    b.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_build)

    s = verbs.add_parser("stats", help="clips per class, source and split of a corpus",
                         description="Print clips per class × source with split totals, and why items "
                                     "were excluded.")
    s.add_argument("dir", metavar="DIR", help="corpus folder")
    s.add_argument("--json", action="store_true", help="print build.json instead")
    s.set_defaults(func=cmd_stats)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _parse_sources(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in ALL_SOURCES]
    if unknown:
        raise ValueError(f"--sources: unknown {', '.join(unknown)}; choose from {','.join(ALL_SOURCES)} or none")
    return names


def cmd_build(args: argparse.Namespace) -> int:
    """``neuraldrum data build``: returns 0 on success."""
    from .build import TRAIN_ONLY, build_corpus

    if args.folder_class and not args.folder:
        raise ValueError("--class labels --folder files; give at least one --folder")
    if args.drumsynth_variants < 0:
        raise ValueError(f"--drumsynth-variants must be >= 0, not {args.drumsynth_variants}")
    drumsynth = args.with_drumsynth or args.drumsynth_variants > 0
    if not 8000 <= args.sample_rate <= 192000:
        raise ValueError(f"--sample-rate must be from 8000 to 192000 Hz, not {args.sample_rate}")
    n_samples = args.n_samples if args.n_samples is not None else 86 * round(256 * args.sample_rate / 22050)
    if not 0 < n_samples <= 10 * args.sample_rate:
        raise ValueError(f"--n-samples must be from 1 to {10 * args.sample_rate} (10 s), not {n_samples}")
    fade_ms = args.fade_ms if args.fade_ms is not None else (300.0 if args.fade_shape == "decay" else 10.0)
    if not 0 <= fade_ms <= 1000:
        raise ValueError(f"--fade-ms must be from 0 to 1000, not {fade_ms}")
    info = build_corpus(args.out, sources=_parse_sources(args.sources), folders=args.folder,
                        folder_class=args.folder_class, seed=args.seed, progress=not args.no_progress,
                        extra_sources=("drumsynth",) if drumsynth else (),
                        drumsynth_variants=args.drumsynth_variants, drumsynth_seed=args.drumsynth_seed,
                        train_only=() if args.drumsynth_in_eval else TRAIN_ONLY,
                        sample_rate=args.sample_rate, n_samples=n_samples, fade_ms=fade_ms,
                        fade_shape=args.fade_shape, pool=args.pool, hydrogen_kits=args.hydrogen_kit)
    for e in info["exclusions"]:
        if e["reason"] in WARN_REASONS:
            print(f"warning: {e['path']}: {e['detail']}", file=sys.stderr)
    n_out = len(info["exclusions"])
    print(f"wrote {info['n_clips']} clips to {args.out} in {info['build_seconds']:.1f} s "
          f"({n_out} items excluded{'; each with its file and reason: neuraldrum data stats ' + args.out + ' --json' if n_out else ''})")
    corpus = load_corpus(args.out)
    print(format_stats(corpus))
    thin = untrained_classes(corpus.summary())
    if thin:
        print(f"warning: {thin}", file=sys.stderr)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """``neuraldrum data stats``: returns 0 on success."""
    corpus = load_corpus(args.dir)
    if args.json:
        print(json.dumps(corpus.info, indent=1, ensure_ascii=False))
    else:
        print(format_stats(corpus))
    return 0


def format_stats(corpus) -> str:
    """A text table: one row per class, columns per source, total and per split; then the exclusions."""
    items = corpus.items
    sources = sorted({it["source"] for it in items}, key=lambda s: SOURCE_RANK.get(s, 99))
    cols = sources + ["total"] + list(SPLITS)
    table = {c: {k: 0 for k in cols} for c in CLASSES + ("total",)}
    for it in items:
        for row in (it["class"], "total"):
            table[row][it["source"]] += 1
            table[row]["total"] += 1
            table[row][it["split"]] += 1
    width = max(9, *(len(c) + 1 for c in cols))
    info = corpus.info
    opts = info.get("options", {})
    lines = [f"corpus {corpus.root}: {len(items)} clips of {opts.get('n_samples')} samples at "
             f"{opts.get('sample_rate')} Hz (format {info.get('format')}, neuraldrum {info.get('version')}, "
             f"built {info.get('created', '?')} in {info.get('build_seconds', '?')} s)",
             f"{'class':<10}" + "".join(f"{c:>{width}}" for c in cols)]
    for row in CLASSES + ("total",):
        if row == "total":
            lines.append("-" * (10 + width * len(cols)))
        lines.append(f"{row:<10}" + "".join(f"{table[row][c]:>{width}}" for c in cols))
    counts = info.get("exclusion_counts", {})
    if counts:
        lines.append(f"excluded {sum(counts.values())} items:")
        lines += [f"  {n:6d}  {reason}" for reason, n in counts.items()]
    pool = info.get("pool")
    if isinstance(pool, dict):
        lines.append(f"unlabelled pool (inverters only, train): {pool.get('n_clips', len(corpus.pool_items))} clips")
        lines += [f"  {n:6d}  {reason}" for reason, n in pool.get("reasons", {}).items()]
        left = pool.get("left_out_counts", {})
        if left:
            lines.append("  left out of the pool: " + ", ".join(f"{n} {r}" for r, n in left.items()))
    return "\n".join(lines)
