"""The player install, checked as a user gets it: a fresh virtual environment, `pip install` of this checkout with
its plain dependencies (no extras), then: no torch in it, `neuraldrum kit` makes a kit, `neuraldrum serve` serves
the page, `neuraldrum osc` answers OSC. Prints one line per check and the venv's size; exits 1 on the first failure.

    python scripts/check_player.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fail(msg: str) -> None:
    print(f"check_player: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def started(cmd: list[str], pattern: str, timeout: float = 60.0) -> tuple[subprocess.Popen, re.Match]:
    """Start ``cmd``; wait for a stdout line matching ``pattern``."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end, seen = time.time() + timeout, []
    while time.time() < end:
        line = p.stdout.readline()
        if not line and p.poll() is not None:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return p, m
    p.kill()
    fail(f"{' '.join(cmd[1:3])}: did not start: {''.join(seen)[-1500:]}")


def osc_reply(port: int, address: str) -> list:
    """Send one OSC message with no arguments to 127.0.0.1:port and read the reply (OSC encoded by hand: no
    package needed here)."""
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(30)
    s.sendto(pad(address.encode()) + pad(b","), ("127.0.0.1", port))
    data, _ = s.recvfrom(65536)
    s.close()
    addr, rest = data.split(b"\0", 1)
    return [addr.decode(), rest.lstrip(b"\0")[:200]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="make the venv here and keep it (default: a temporary folder)")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="neuraldrum-player-"))
    venv, t0 = work / "venv", time.time()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py, nd = venv / "bin" / "python", venv / "bin" / "neuraldrum"
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True)
        if r.returncode:
            fail(f"pip install: {r.stderr[-1500:]}")
        print(f"check_player: installed in {time.time() - t0:.0f} s")
        r = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True)
        if r.stdout.strip() != "True":
            fail("torch is installed by the plain dependencies")
        print("check_player: no torch")
        r = subprocess.run([str(nd), "kit", "-o", str(work / "kit"), "--seed", "0", "--hifi"], capture_output=True,
                           text=True, cwd=work)
        wavs = sorted(p.name for p in (work / "kit").glob("*.wav")) if (work / "kit").is_dir() else []
        if r.returncode or len(wavs) != 11:
            fail(f"kit: rc {r.returncode}, {len(wavs)} WAVs: {r.stderr[-1500:]}")
        print("check_player: kit --hifi made 11 sounds")
        p, m = started([str(nd), "serve", "--port", "0", "--no-browser"], r"playing at (http://\S+)")
        try:
            with urllib.request.urlopen(m.group(1), timeout=30) as page:
                html = page.read().decode()
            with urllib.request.urlopen(m.group(1) + "api/info", timeout=30) as info:
                info_text = info.read().decode()
            if "<html" not in html.lower() or "kick" not in info_text:
                fail(f"serve: page or /api/info unexpected: {html[:200]!r} {info_text[:200]!r}")
        finally:
            p.terminate()
            p.wait(10)
        print("check_player: serve served the page")
        p, m = started([str(nd), "osc", "--port", "0", "--out", str(work / "osc")], r"OSC on udp://[^:]+:(\d+)")
        try:
            reply = osc_reply(int(m.group(1)), "/classes")
            if reply[0] != "/classes" or b"kick" not in reply[1]:
                fail(f"osc: /classes answered {reply}")
        finally:
            p.terminate()
            p.wait(10)
        print("check_player: osc answered /classes")
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
        print(f"check_player: ok in {time.time() - t0:.0f} s; the venv holds {size / 1e6:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)  # the venv's own install, not this checkout's src
    sys.exit(main())
