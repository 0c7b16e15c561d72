"""The bounded load test on loopback (slow: ≈ 25 s): 8 clients dragging pads against `neuraldrum serve`.

Reports throughput, p50/p95/p99 and errors (run with ``-s`` to see them, or run
``python -m neuraldrum.web.loadtest`` for the full 20 s version). Requires no errors and no lost replies;
the p95 target of the service (≤ 1.5 × the time to render 8 sounds in one batch) is printed, not asserted: CI
machines are shared and the figure is a measurement to report (`neuraldrum bench`, README), not a unit test.
What is asserted is the service's scheduling, inside the server: submit → sound ready p95 within 3 batch times
of the run (a move waits at most for the batch being rendered, then is in the next; measured 2.0–2.3× for the
22.05 and 44.1 kHz models). The client's p95 adds the transfer (44.1 kHz sounds are twice the bytes: 313 vs
160 ms p95 on the 2-core CI machine, 2026-11-27) and is not asserted.
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
    assert r["server_ms"]["p95"] <= 3 * r["batch_ms_in_server"], r
