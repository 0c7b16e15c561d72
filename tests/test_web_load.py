"""The bounded load test on loopback (slow: ≈ 25 s): 8 clients dragging pads against `neuraldrum serve`.

Reports throughput, p50/p95/p99 and errors (run with ``-s`` to see them, or run
``python -m neuraldrum.web.loadtest`` for the full 20 s version). Requires no errors and no lost replies;
the p95 target of the service (≤ 1.5 × the time to render 8 sounds in one batch) is printed, and asserted
only loosely here (3 × the batch time inside the server during the run), because CI machines are shared and
the 1.5× figure is a measurement to report, not a unit test.
"""
import json

import pytest

pytest.importorskip("websockets")
pytest.importorskip("uvicorn")

from neuraldrum.web import loadtest  # noqa: E402


@pytest.mark.slow
def test_eight_clients_dragging_pads():
    r = loadtest.run(clients=8, seconds=10, rate_hz=60, threads=1)
    print(json.dumps(r, indent=1))
    assert r["errors"] == 0 and r["unanswered"] == 0 and r["wrong_length"] == 0, r["error_messages"]
    assert r["sounds"] >= 8 and r["moves"] == r["sounds"] + r["superseded"]
    assert r["latency_ms"]["p95"] <= 3 * r["batch_ms_in_server"], r
