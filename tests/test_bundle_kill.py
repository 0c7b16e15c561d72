"""`neuraldrum bundle` killed with SIGKILL at random moments while it writes never leaves a half-written bundle:
after each kill the target is missing (a first run) or a whole bundle, which loads (a replacement killed between
its two renames leaves the old one aside, put back by the next run); the next uninterrupted run succeeds and leaves
no temp or old folder behind."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from neuraldrum.bundle import load_bundle


@pytest.mark.slow
def test_bundle_killed_at_random_moments_leaves_a_whole_bundle_or_none(tiny_bundle, tiny_corpus, tmp_path):
    runs = tiny_bundle.parent  # the wae, mcnn and classifier runs the session's tiny bundle was made from
    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "neuraldrum", "bundle", "--wae", str(runs / "wae"), "--mcnn", str(runs / "mcnn"),
           "--classifier", str(runs / "clf"), "--data", str(tiny_corpus), "--out", str(out), "--per-class", "2",
           "--latency-runs", "5"]

    def working(pid: int) -> bool:  # the run has made its temp (scratch or new bundle) folder beside the target
        return any(n.startswith(f".b.tmp-{pid}-") for n in os.listdir(tmp_path))

    def start_and_wait_for_work() -> tuple[subprocess.Popen, float]:
        child, t0 = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), time.monotonic()
        while not working(child.pid) and child.poll() is None:
            time.sleep(0.005)
        return child, time.monotonic() - t0

    def run_whole() -> float:
        """An uninterrupted run; returns how long it writes (from its temp folder's appearing to its end)."""
        child, t_work = start_and_wait_for_work()
        t0 = time.monotonic()
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err
        return time.monotonic() - t0

    def check() -> bool:
        """Beside the target only a killed writer's temp or old folders; the target, if any, loads whole.
        Returns whether the kill left such a folder (it landed mid-write)."""
        names = os.listdir(tmp_path)
        for name in names:
            assert name == "b" or name.startswith((".b.tmp-", ".b.old-")), name
        if out.exists():
            assert load_bundle(out).classes  # checksums, configs and weights all checked
        return any(n != "b" for n in names)

    writing = run_whole()
    shutil.rmtree(out)
    rng = np.random.default_rng(0)
    mid_write = 0
    for k in range(6):
        if k == 3:  # the first kills land on a fresh target, the rest on a bundle being replaced
            run_whole()
        child, _ = start_and_wait_for_work()
        time.sleep(rng.uniform(0.0, 1.0) * writing)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        mid_write += check()
        if k >= 3:
            assert out.is_dir() or any(n.startswith(".b.old-") for n in os.listdir(tmp_path))
    assert mid_write >= 3, mid_write  # most kills landed while the bundle was being written
    run_whole()
    assert sorted(os.listdir(tmp_path)) == ["b"]  # the run after the kills cleaned what they left
    load_bundle(out)
