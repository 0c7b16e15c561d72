"""Figures and Markdown for an evaluation report folder.

Plots draw on a bare ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot state, no display needed, and
nothing changes for a caller who has pyplot open with another backend. matplotlib is imported only when a plot
is drawn (it is an optional ``eval`` extra); the Markdown half needs nothing beyond the standard library.

Every file is written atomically (:mod:`neuraldrum.atomic`: a temp file beside it, then a rename) and every
function returns the Path it wrote. Metric keys are '/'-namespaced (``"recon/logmel_l1"``); :func:`write_markdown`
groups by prefix.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .atomic import atomic_file, write_text

PathLike = Union[str, os.PathLike]
DASH = "–"
_STAT = re.compile(r"(mean|median|std|var|min|max|n|count|sum|iqr|sem|ci\d*|p\d+(\.\d+)?)$")


# ---------------------------------------------------------------- writing files

def _atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it onto ``path``; removed on error."""
    with atomic_file(path) as tmp:
        write(str(tmp))
    return Path(path)


def _new_figure(width: float, height: float, layout: Optional[str] = "constrained"):
    """A Figure on its own Agg canvas: never pyplot, so no display and no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: PathLike) -> Path:
    """Save a figure atomically; the format follows the suffix of ``path`` (PNG when it has none)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return _atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight"))


# ---------------------------------------------------------------- checking inputs

def _array(x, name: str, ndim: int, shape_doc: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array of shape {shape_doc}, got shape {a.shape}")
    return a


def _labels(x: Sequence, name: str, n: int) -> list[str]:
    if isinstance(x, str) or len(x) != n:
        raise ValueError(f"{name}: expected {n} labels, got {x!r}")
    return [str(s) for s in x]


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    """Finite min and max over the arrays, for a shared colour scale (0, 1 when nothing is finite)."""
    vals = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


# ---------------------------------------------------------------- plots

def plot_spectrogram_pairs(real, recon, titles: Sequence[str], path: PathLike, sample_rate: int = 22050,
                           hop: int = 256, rows_label: Sequence[str] = ("real", "reconstructed")) -> Path:
    """A 2×K grid of log-Mel images: real on top, reconstruction below, one colour scale per column.

    Args:
        real: (K, n_mels, T) log-Mel spectrograms.
        recon: (K, n_mels, T) their reconstructions.
        titles: K column titles (e.g. class names).
        path: the image to write.
        sample_rate, hop: to label the time axis in seconds (T·hop/sample_rate).
        rows_label: labels of the two rows.
    """
    real = _array(real, "real", 3, "(K, n_mels, T)")
    recon = _array(recon, "recon", 3, "(K, n_mels, T)")
    if recon.shape != real.shape:
        raise ValueError(f"recon: shape {recon.shape} differs from real {real.shape}")
    k, n_mels, t = real.shape
    titles = _labels(titles, "titles", k)
    rows_label = _labels(rows_label, "rows_label", 2)
    if sample_rate <= 0 or hop <= 0:
        raise ValueError(f"sample_rate, hop: must be positive, got {sample_rate}, {hop}")
    extent = (0.0, t * hop / sample_rate, 0.0, float(n_mels))
    fig = _new_figure(1.0 + 2.3 * k, 4.6)
    axes = fig.subplots(2, k, squeeze=False, sharex=True, sharey=True)
    for j in range(k):
        vmin, vmax = _limits(real[j], recon[j])
        for i, spec in enumerate((real[j], recon[j])):
            ax = axes[i, j]
            ax.imshow(spec, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma",
                      interpolation="nearest")
            if i == 0:
                ax.set_title(titles[j])
            else:
                ax.set_xlabel("time (s)")
            if j == 0:
                ax.set_ylabel(f"{rows_label[i]}\nMel band")
    return _save(fig, path)


def plot_confusion(matrix, classes: Sequence[str], path: PathLike, title: str = "") -> Path:
    """Confusion matrix: colours are row-normalised, each non-zero cell shows its count.

    Args:
        matrix: (C, C) counts, row = true class, column = predicted class.
        classes: C class names; the row labels also carry each class's accuracy (recall).
        path: the image to write.
        title: shown above the overall accuracy.
    """
    m = _array(matrix, "matrix", 2, "(C, C)")
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix: must be square (C, C), got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("matrix: counts must be finite and non-negative")
    c = m.shape[0]
    classes = _labels(classes, "classes", c)
    rows = m.sum(axis=1)
    norm = np.divide(m, rows[:, None], out=np.zeros_like(m), where=rows[:, None] > 0)
    recall = [f"{norm[i, i]:.0%}" if rows[i] > 0 else DASH for i in range(c)]
    overall = np.trace(m) / m.sum() if m.sum() > 0 else float("nan")

    fig = _new_figure(2.0 + 0.55 * c, 1.6 + 0.5 * c)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    for i, j in zip(*np.nonzero(m)):
        v = m[i, j]
        ax.text(j, i, f"{int(v)}" if float(v).is_integer() else f"{v:.3g}", ha="center", va="center",
                fontsize=8, color="white" if norm[i, j] > 0.55 else "black")
    ax.set_xticks(range(c), classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(c), [f"{name} ({r})" for name, r in zip(classes, recall)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title((f"{title}\n" if title else "") + f"accuracy {overall:.1%} (n = {m.sum():g})")
    fig.colorbar(im, ax=ax, label="fraction of true class", shrink=0.8)
    return _save(fig, path)


def _class_styles(c: int) -> list[tuple[tuple, str]]:
    """(colour, marker) per class: tab20's strong colours first, then its light ones; markers cycle with a
    different period, so even similar colours differ in shape."""
    import matplotlib

    if c <= 20:
        tab = matplotlib.colormaps["tab20"].colors
        colours = [tab[i] for i in list(range(0, 20, 2)) + list(range(1, 20, 2))][:c]
    else:
        colours = [matplotlib.colormaps["hsv"](i / c) for i in range(c)]
    markers = "os^DvP*"
    return [(colours[i], markers[i % 7]) for i in range(c)]


def plot_latent_map(points, labels, classes: Sequence[str], path: PathLike, title: str = "") -> Path:
    """Scatter of 2-D points (e.g. the first two principal components of latents), coloured by class.

    Args:
        points: (N, 2) coordinates.
        labels: (N,) integer class ids in [0, C).
        classes: C class names for the legend.
        path: the image to write.
    """
    pts = _array(points, "points", 2, "(N, 2)")
    if pts.shape[1] != 2:
        raise ValueError(f"points: expected shape (N, 2), got {pts.shape}")
    lab = np.asarray(labels)
    if lab.shape != (pts.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels: expected ({pts.shape[0]},) integer class ids, got {lab.dtype} {lab.shape}")
    classes = [str(s) for s in classes]
    if lab.min() < 0 or lab.max() >= len(classes):
        raise ValueError(f"labels: ids must lie in [0, {len(classes)}), got [{lab.min()}, {lab.max()}]")

    fig = _new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    for ci, (colour, marker) in enumerate(_class_styles(len(classes))):
        sel = lab == ci
        if sel.any():
            ax.scatter(pts[sel, 0], pts[sel, 1], s=14, color=colour, marker=marker, alpha=0.75, linewidths=0,
                       label=f"{classes[ci]} ({int(sel.sum())})")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, markerscale=1.5, frameon=False)
    return _save(fig, path)


def plot_grid_spectrograms(grid, path: PathLike, x_values: Sequence[float], y_values: Sequence[float],
                           title: str = "") -> Path:
    """Log-Mel images of sounds made on an XY pad, laid out like the pad, on one shared colour scale.

    Args:
        grid: (H, W, n_mels, T); grid[i, j] is the sound at (x_values[j], y_values[i]).
        path: the image to write.
        x_values: (W,) pad x of each column; y_values: (H,) pad y of each row.
    Drawn with x increasing to the right and y upwards, so the top row is the largest y whatever the order
    of ``y_values``; only the outer axes carry labels (the control values).
    """
    g = _array(grid, "grid", 4, "(H, W, n_mels, T)")
    h, w = g.shape[:2]
    xs = np.asarray(x_values, dtype=np.float64).ravel()
    ys = np.asarray(y_values, dtype=np.float64).ravel()
    if xs.shape != (w,):
        raise ValueError(f"x_values: expected {w} values (one per column), got {xs.shape[0]}")
    if ys.shape != (h,):
        raise ValueError(f"y_values: expected {h} values (one per row), got {ys.shape[0]}")
    cols, rows = np.argsort(xs, kind="stable"), np.argsort(-ys, kind="stable")
    vmin, vmax = _limits(g)

    fig = _new_figure(0.8 + 1.1 * w, 0.8 + 0.9 * h, layout=None)
    axes = fig.subplots(h, w, squeeze=False)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    for r, i in enumerate(rows):
        for c, j in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(g[i, j], origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma",
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == h - 1:
                ax.set_xlabel(f"{xs[j]:.3g}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{ys[i]:.3g}", fontsize=8, rotation=0, ha="right", va="center")
    fig.supxlabel("x")
    fig.supylabel("y")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_bars(values: dict[str, dict[str, float]], path: PathLike, ylabel: str, title: str = "") -> Path:
    """Grouped bar chart, e.g. a per-class metric for several methods.

    Args:
        values: {series: {category: value}}; categories are the union over series in first-seen order, and a
            category a series lacks (or None / NaN) leaves a gap.
        path: the image to write.
        ylabel: the metric's name and unit.
    """
    if not isinstance(values, dict) or not values or not all(isinstance(v, dict) for v in values.values()):
        raise ValueError("values: expected a non-empty {series: {category: value}} dict")
    cats = list(dict.fromkeys(c for inner in values.values() for c in inner))
    if not cats:
        raise ValueError("values: no categories")
    try:
        table = np.array([[np.nan if inner.get(c) is None else float(inner[c]) for c in cats]
                          for inner in values.values()])
    except (TypeError, ValueError) as e:
        raise ValueError(f"values: every value must be a number or None ({e})") from None

    s = len(values)
    width = 0.8 / s
    x = np.arange(len(cats))
    fig = _new_figure(max(5.0, 1.5 + 0.35 * s * len(cats)), 4.0)
    ax = fig.add_subplot()
    for k, (name, row) in enumerate(zip(values, table)):
        ok = np.isfinite(row)
        ax.bar(x[ok] - 0.4 + width * (k + 0.5), row[ok], width, label=str(name), color=f"C{k % 10}")
    ax.set_xticks(x, [str(c) for c in cats], rotation=45 if len(cats) > 5 else 0,
                  ha="right" if len(cats) > 5 else "center", rotation_mode="anchor")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return _save(fig, path)


# ---------------------------------------------------------------- Markdown

def _cell(v, floatfmt: str) -> str:
    if v is None:
        return DASH
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format(v, floatfmt)
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict], columns: list[str], floatfmt: str = ".3g") -> str:
    """A GitHub Markdown table: header, separator, one line per row dict (missing or None → "–"; floats in
    ``floatfmt``, ints as ints). Ends without a newline."""
    if not columns:
        raise ValueError("columns: need at least one column")
    lines = ["| " + " | ".join(_cell(c, floatfmt) for c in columns) + " |",
             "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), floatfmt) for c in columns) + " |")
    return "\n".join(lines)


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str, np.generic))


def _is_stats(v) -> bool:
    return (isinstance(v, dict) and bool(v) and all(isinstance(k, str) and _STAT.match(k) for k in v)
            and all(_is_scalar(x) and not isinstance(x, str) for x in v.values()))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _section(entries: list[tuple[str, object]], floatfmt: str) -> list[str]:
    """Markdown blocks for one namespace: scalars, statistics, per-class tables, then JSON for the rest."""
    scalars = [(k, v) for k, v in entries if _is_scalar(v)]
    stats = [(k, v) for k, v in entries if _is_stats(v)]
    per_class = [(k, v) for k, v in entries if isinstance(v, dict) and v and not _is_stats(v)
                 and all(_is_scalar(x) for x in v.values())]
    per_class_stats = [(k, v) for k, v in entries if isinstance(v, dict) and v and not _is_stats(v)
                       and all(_is_stats(x) for x in v.values())]
    done = {k for k, _ in scalars + stats + per_class + per_class_stats}
    blocks = []
    if scalars:
        blocks.append(markdown_table([{"metric": k, "value": v} for k, v in scalars], ["metric", "value"],
                                     floatfmt))
    if stats:
        cols = list(dict.fromkeys(s for _, v in stats for s in v))
        blocks.append(markdown_table([{"metric": k, **v} for k, v in stats], ["metric"] + cols, floatfmt))
    if per_class:
        names = list(dict.fromkeys(c for _, v in per_class for c in v))
        rows = [{"class": c, **{k: v.get(c) for k, v in per_class}} for c in names]
        blocks.append(markdown_table(rows, ["class"] + [k for k, _ in per_class], floatfmt))
    for k, v in per_class_stats:
        cols = list(dict.fromkeys(s for x in v.values() for s in x))
        blocks.append(f"**{k}**\n\n" + markdown_table([{"class": c, **x} for c, x in v.items()],
                                                        ["class"] + cols, floatfmt))
    for k, v in entries:
        if k not in done:
            text = json.dumps(v, default=_json_default, ensure_ascii=False, separators=(", ", ": "))
            blocks.append(f"**{k}**\n\n```json\n{text}\n```")
    return blocks


def write_markdown(report: dict, path: PathLike, images: Optional[dict[str, str]] = None, *,
                   title: str = "neuraldrum evaluation report", floatfmt: str = ".4g") -> Path:
    """Write a metrics dict as a readable Markdown report.

    Top-level keys are grouped by namespace (the text before the first '/') into "## <namespace>" sections;
    a key without '/' whose value is a dict is a section of its own (e.g. "meta"). Within a section: scalars in
    one (metric, value) table; statistic dicts ({"mean": .., "median": .., "p95": ..}) in one table with a
    column per statistic; per-class dicts ({class: value}) in one table with classes as rows (a table each when
    their values are statistic dicts); anything else as a compact JSON block. ``images`` ({caption: relative
    path}) adds a "## Figures" section.
    """
    if not isinstance(report, dict) or not all(isinstance(k, str) for k in report):
        raise ValueError("report: expected a dict with string keys")
    if images is not None and not isinstance(images, dict):
        raise ValueError("images: expected a {caption: relative path} dict")
    sections: dict[str, list[tuple[str, object]]] = {}
    for key, value in report.items():
        ns, _, name = key.partition("/")
        if name:
            sections.setdefault(ns, []).append((name, value))
        elif isinstance(value, dict):
            sections.setdefault(ns, []).extend((str(k), v) for k, v in value.items())
        else:
            sections.setdefault(ns, []).append((ns, value))

    parts = [f"# {title}"]
    for ns, entries in sections.items():
        parts.append(f"## {ns}")
        parts.extend(_section(entries, floatfmt) or ["(empty)"])
    if images:
        parts.append("## Figures")
        for caption, rel in images.items():
            rel = Path(rel).as_posix()
            parts.append(f"![{caption}]({f'<{rel}>' if ' ' in rel else rel})")
    text = "\n\n".join(parts) + "\n"
    return write_text(path, text)
