"""An upload the client abandons mid-body costs the server's log one line, not a 60-line traceback, and the
server goes on answering (a real uvicorn server, real sockets)."""
import socket
import time
import urllib.request

import pytest

pytest.importorskip("uvicorn")
from neuraldrum.web.loadtest import start_server  # noqa: E402


def test_aborted_uploads_log_one_line_each(bundle_dir):
    proc, url = start_server(str(bundle_dir), 1)
    host, port = url.removeprefix("ws://").removesuffix("/ws").rsplit(":", 1)
    try:
        for _ in range(5):
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(b"POST /api/encode?name=x.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n" + b"R" * 5000)
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://{host}:{port}/api/info", timeout=30) as r:
            assert r.status == 200  # still serving
        time.sleep(0.5)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    lines = [ln for ln in out.splitlines() if "/api/encode" in ln or "Traceback" in ln or "Error" in ln]
    assert "Traceback" not in out, out[-3000:]
    assert len([ln for ln in lines if "client left" in ln]) == 5, out[-3000:]
