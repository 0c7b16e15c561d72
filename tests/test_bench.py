"""`neuraldrum bench` on the tiny bundle (speed targets live in the benchmark itself, not in tests)."""
import json
import time

import pytest

from neuraldrum import cli
from neuraldrum.bench import bench, flops, format_table, time_calls


def test_time_calls_measures_and_stops_early():
    r = time_calls(lambda: time.sleep(0.005), runs=1000, warmup=1, max_seconds=0.1)
    assert 5 <= r["runs"] < 1000  # stopped by max_seconds, after at least 5 calls
    assert r["median_ms"] >= 5.0 and r["p95_ms"] >= r["median_ms"] >= r["min_ms"]


def test_flops_of_a_linear_layer_is_known():
    import torch

    lin = torch.nn.Linear(10, 20, bias=False)
    x = torch.zeros(3, 10)
    assert flops(lambda: lin(x)) == 2 * 3 * 10 * 20


def test_bench_with_baselines(tiny_bundle):
    r = bench(tiny_bundle, runs=5, max_seconds=0.05, gl_iters=(2,), progress=False, service_seconds=0.3)
    T = r["bench/threads_all"]
    for name in ("decoder", "inverter", "inverter_convt", "generate"):
        for t in {1, T}:
            assert r[f"bench/{name}_t{t}"]["runs"] >= 5 and r[f"bench/{name}_t{t}"]["median_ms"] > 0
    gl = r["bench/gl2"]
    assert gl["ratio_to_mcnn_t1"] == pytest.approx(gl["median_ms"] / r["bench/inverter_t1"]["median_ms"])
    v1, v3 = r["bench/hifigan_v1"], r["bench/hifigan_v3"]
    assert v1["params"] > 13e6 and v3["params"] < 2e6 and r["bench/vocos"]["params"] > 13e6
    assert v1["flops"] > v3["flops"] > 0 and r["bench/flops"]["inverter"] > 0
    assert r["bench/peak_rss_mb"] > 50 and r["bench/bundle_mb"] > 0
    for c in (1, 8):  # every move is either rendered or superseded by a newer one of its client; none lost
        s = r[f"bench/service_c{c}"]
        assert s["clients"] == c and s["rendered"] >= 1 and s["failed"] == s["overloaded"] == 0
        assert s["rendered"] + s["superseded"] == s["sent"] and s["max_queue"] <= c
        assert s["p95_over_batch8"] == pytest.approx(s["p95_ms"] / r["bench/batch8"]["median_ms"])
    h = r["bench/hifi_t1"]  # hi-fi: the playing path plus Griffin-Lim iterations, so slower than it
    assert h["iters"] == 24 and h["ratio_to_generate_t1"] > 1
    assert h["ratio_to_generate_t1"] == pytest.approx(h["median_ms"] / r["bench/generate_t1"]["median_ms"])
    o = r["bench/onnx"]
    if "skipped" not in o:
        assert o["ratio_to_torch_t1"] == pytest.approx(o["generate_t1"]["median_ms"] / r["bench/generate_t1"]["median_ms"])
        assert o["peak_rss_mb"] > 20 and o["torch_peak_rss_mb"] > 20 and o["install_mb"]["torch"] > 100
    text = format_table(r)
    assert "hifigan_v1" in text and "Griffin-Lim 2" in text and "sounds/s" in text


def test_bench_cli_json(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--model", str(tiny_bundle), "--runs", "5", "--max-seconds", "0.05",
                     "--no-baselines", "--no-onnx", "--service-seconds", "0.2", "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert "bench/hifigan_v1" not in printed and printed["bench/generate_t1"]["median_ms"] > 0


def test_bench_times_other_bundles_in_the_same_run(tiny_bundle, bundle_dir):
    from neuraldrum.bench import format_table

    r = bench(tiny_bundle, runs=5, max_seconds=0.05, baselines=False, progress=False, service_seconds=0.2,
              onnx=False, against=[bundle_dir])
    a = r["bench/against"][str(bundle_dir)]
    assert a["sample_rate"] == 22050 and a["inverter_kind"] in ("mcnn", "vocos")
    for name in ("inverter", "generate"):
        assert a[f"{name}_t1"]["runs"] >= 5 and a[f"{name}_t1"]["median_ms"] > 0
        assert a[f"ratio_{name}_t1"] == pytest.approx(r[f"bench/{name}_t1"]["median_ms"] / a[f"{name}_t1"]["median_ms"])
    assert f"against {bundle_dir}" in format_table(r)
