import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from neuraldrum import report  # noqa: E402
from neuraldrum.report import (markdown_table, plot_bars, plot_confusion, plot_grid_spectrograms,  # noqa: E402
                               plot_latent_map, plot_spectrogram_pairs, write_markdown)

CLASSES = ["kick", "snare", "clap", "hh_closed", "hh_open", "tom", "ride", "crash", "rim", "cowbell", "shaker"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_w=150, min_h=100):
    """A real PNG that matplotlib reads back, of a plausible size; returns (height, width)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    img = imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert min_w <= w <= 5000 and min_h <= h <= 5000
    assert img[..., :3].std() > 0.01  # not a blank canvas
    return h, w


def test_every_plot_writes_a_png_and_leaves_no_temp_files(tmp_path, rng):
    k, n_mels, t = 3, 16, 20
    real = rng.standard_normal((k, n_mels, t))
    recon = real + 0.1 * rng.standard_normal((k, n_mels, t))
    counts = rng.integers(0, 9, size=(11, 11)) + np.diag(np.full(11, 30))
    counts[3] = 0  # a class never seen: its row stays blank and its accuracy reads "–"
    points = rng.standard_normal((110, 2))
    labels = np.repeat(np.arange(11), 10)
    grid = rng.standard_normal((3, 4, n_mels, t))
    bars = {"MCNN": {c: float(v) for c, v in zip(CLASSES, rng.random(11))},
            "Griffin-Lim 32": {c: float(v) for c, v in zip(CLASSES[:10], rng.random(10))}}

    written = [
        plot_spectrogram_pairs(real, recon, CLASSES[:k], tmp_path / "pairs.png"),
        plot_confusion(counts, CLASSES, tmp_path / "confusion.png", title="prior samples"),
        plot_latent_map(points, labels, CLASSES, tmp_path / "latents.png", title="PCA of z"),
        plot_grid_spectrograms(grid, tmp_path / "grid.png", x_values=[-1, 0, 1, 2], y_values=[-1, 0, 1],
                               title="XY pad"),
        plot_bars(bars, tmp_path / "bars.png", ylabel="spectral convergence", title="per class"),
    ]
    assert written == [tmp_path / n for n in ("pairs.png", "confusion.png", "latents.png", "grid.png", "bars.png")]
    sizes = {p.name: assert_png(p) for p in written}
    h, w = sizes["pairs.png"]
    assert w > h  # three columns, two rows
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_plots_accept_single_items_and_create_folders(tmp_path, rng):
    out = tmp_path / "figures" / "deep"
    one = rng.standard_normal((1, 8, 5))
    assert_png(plot_spectrogram_pairs(one, one, ["kick"], out / "pair.png", rows_label=("a", "b")), min_w=80)
    assert_png(plot_grid_spectrograms(one[None], out / "grid.png", [0.0], [0.0]), min_w=50, min_h=50)
    assert_png(plot_confusion([[3]], ["kick"], out / "conf.png"), min_w=80, min_h=80)


def test_grid_puts_the_largest_y_on_top(tmp_path):
    """Row i of the grid is drawn at height y_values[i]: with ascending y, the last row must be on top.
    Rows are constant images, the y = +1 row at vmax (magma's pale yellow), the others at vmin (black), so down
    the middle of the picture the yellow tile lies above the black ones."""
    grid = np.zeros((3, 1, 8, 8))
    grid[2] = 1.0
    path = plot_grid_spectrograms(grid, tmp_path / "grid.png", x_values=[0.0], y_values=[-1.0, 0.0, 1.0])
    img = imread(path)[..., :3]
    col = img[:, img.shape[1] // 2]
    yellow = np.nonzero((col[:, 0] > 0.9) & (col[:, 1] > 0.9) & (col[:, 2] < 0.85))[0]
    black = np.nonzero(np.all(col < 0.1, axis=1))[0]
    assert yellow.size and black.size
    assert np.sum(black < yellow.max()) <= 3  # above the yellow tile, only the axes' black frame line


def test_markdown_table_known_answer():
    rows = [{"class": "kick", "acc": 0.91234, "n": 40},
            {"class": "snare", "acc": None, "n": np.int64(3)},
            {"class": "a|b", "acc": np.float32(1234.5)}]
    expected = ("| class | acc | n |\n"
                "| --- | --- | --- |\n"
                "| kick | 0.912 | 40 |\n"
                "| snare | – | 3 |\n"
                "| a\\|b | 1.23e+03 | – |")
    assert markdown_table(rows, ["class", "acc", "n"]) == expected
    assert markdown_table([{"x": 0.5}], ["x"], floatfmt=".2f") == "| x |\n| --- |\n| 0.50 |"


def test_write_markdown_sections_tables_and_figures(tmp_path):
    metrics = {
        "recon/logmel_l1": {"mean": 0.123456, "median": 0.1, "p95": 0.3},
        "recon/sc": {"mean": 0.5, "median": 0.25},
        "recon/n_clips": 300,
        "inv/mcnn_sc": {"mean": 0.2, "median": 0.19},
        "listen/prior_acc": 0.8,
        "listen/acc_per_class": {"kick": 0.9, "snare": 0.7},
        "listen/sc_per_class": {"kick": {"mean": 0.2, "median": 0.1}},
        "gen/fd": 12.3,
        "meta": {"split": "test", "classes": ["kick", "snare"]},
    }
    path = write_markdown(metrics, tmp_path / "report.md", images={"confusion": "figures/confusion.png"})
    assert path == tmp_path / "report.md"
    text = path.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## recon", "## inv", "## listen", "## gen", "## meta", "## Figures"]
    assert "| metric | mean | median | p95 |" in text
    assert "| logmel_l1 | 0.1235 | 0.1 | 0.3 |" in text
    assert "| sc | 0.5 | 0.25 | – |" in text
    assert "| n_clips | 300 |" in text and "| gen/fd" not in text and "| fd | 12.3 |" in text
    assert "| class | acc_per_class |" in text and "| kick | 0.9 |" in text
    assert "**sc_per_class**" in text and "| kick | 0.2 | 0.1 |" in text
    assert "| split | test |" in text and '```json\n["kick", "snare"]\n```' in text
    assert "![confusion](figures/confusion.png)" in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")

    def boom(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        report._atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


@pytest.mark.parametrize("call, name", [
    (lambda p: plot_spectrogram_pairs(np.zeros((2, 4, 5)), np.zeros((2, 4, 6)), ["a", "b"], p), "recon"),
    (lambda p: plot_spectrogram_pairs(np.zeros((4, 5)), np.zeros((4, 5)), ["a"], p), "real"),
    (lambda p: plot_spectrogram_pairs(np.zeros((2, 4, 5)), np.zeros((2, 4, 5)), ["a"], p), "titles"),
    (lambda p: plot_confusion(np.ones((3, 2)), ["a", "b", "c"], p), "matrix"),
    (lambda p: plot_confusion(-np.ones((2, 2)), ["a", "b"], p), "matrix"),
    (lambda p: plot_confusion(np.ones((2, 2)), ["a", "b", "c"], p), "classes"),
    (lambda p: plot_latent_map(np.zeros((5, 3)), np.zeros(5, int), ["a"], p), "points"),
    (lambda p: plot_latent_map(np.zeros((5, 2)), np.zeros(4, int), ["a"], p), "labels"),
    (lambda p: plot_latent_map(np.zeros((5, 2)), np.full(5, 2), ["a", "b"], p), "labels"),
    (lambda p: plot_grid_spectrograms(np.zeros((2, 3, 4, 5)), p, [0, 1], [0, 1]), "x_values"),
    (lambda p: plot_grid_spectrograms(np.zeros((2, 3, 4, 5)), p, [0, 1, 2], [0]), "y_values"),
    (lambda p: plot_grid_spectrograms(np.zeros((2, 4, 5)), p, [0], [0]), "grid"),
    (lambda p: plot_bars({}, p, "x"), "values"),
    (lambda p: plot_bars({"a": {"kick": "loud"}}, p, "x"), "values"),
    (lambda p: write_markdown(["not", "a", "dict"], p), "report"),
])
def test_bad_input_names_the_argument(tmp_path, call, name):
    with pytest.raises(ValueError, match=name):
        call(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
