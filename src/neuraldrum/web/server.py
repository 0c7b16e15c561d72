"""``neuraldrum serve``: play the instrument in a web browser.

Starts the web app of :mod:`neuraldrum.web.app` with uvicorn on 127.0.0.1 (only this machine can reach it),
prints its address and opens it in the default browser unless ``--no-browser``. Ctrl+C stops it.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
import webbrowser
from typing import Optional

WS_MAX_BYTES = 256 * 1024  # the largest WebSocket message the server reads


def make_server(engine, host: str = "127.0.0.1", port: int = 8000, corpus: Optional[str] = None, service=None,
                kit_engine=None):
    """A ``uvicorn.Server`` for the app over ``engine`` (not started). ``port`` 0 takes a free port. ``service``:
    a sound service to share (with an OSC server, say); the app makes its own when None. ``kit_engine``: see
    :func:`neuraldrum.web.app.create_app`."""
    import uvicorn
    from uvicorn.config import WS_PROTOCOLS

    from .app import create_app

    ws = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"  # the newer one where there
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"] if host in ("127.0.0.1", "localhost", "::1") else None
    # no permessage-deflate (uvicorn offers it, browsers take it): zlib over every sound cost more than it saved,
    # e.g. 8 clients dragging pads, 44.1 kHz float32 sounds: p95 0.74 s with it (2026-11-28, web.loadtest)
    app = create_app(engine, corpus=corpus, service=service, hosts=hosts, kit_engine=kit_engine)
    config = uvicorn.Config(app, host=host, port=port,
                            log_level="warning", ws=ws, ws_max_size=WS_MAX_BYTES, ws_per_message_deflate=False,
                            lifespan="on", access_log=False)
    return uvicorn.Server(config)


def bound_url(server) -> str:
    """The http:// address a started server listens on."""
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}/"


def _announce(server, open_browser: bool) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    url = bound_url(server)
    print(f"neuraldrum: playing at {url}  (Ctrl+C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)


def _kit_engine(args: argparse.Namespace, like=None):
    """What renders in hi-fi (the page's kit zips, still pads and slots; OSC's ``quality hifi`` and /kit/save): the
    model as a torch engine with Griffin-Lim iterations, made when the server starts; None for an ONNX export
    folder (no torch there: the playing engine renders kits, and hi-fi requests are played live)."""
    from ..engine import hifi_maker

    return hifi_maker(args.model, args.threads, like)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..engine import playing_engine

    if args.data is not None:
        from ..data.corpus import load_corpus

        load_corpus(args.data)  # a wrong folder fails now, with the file named, not on the first map request
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"neuraldrum: warning: serving on {args.host}: other machines can reach this instrument",
              file=sys.stderr)
    engine = playing_engine(args.model, threads=args.threads, backend=args.backend)
    make_hifi = _kit_engine(args, like=engine)  # (a torch playing engine lends its loaded bundle)
    service, osc = None, None
    if args.osc is not None:  # Max / Pure Data beside the page, on the same render worker
        from ..control.osc_server import start_osc
        from ..service import SoundService

        service = SoundService(engine)
        hifi = make_hifi() if make_hifi is not None else None  # one hi-fi engine for OSC and the page
        make_hifi = (lambda: hifi) if hifi is not None else None
        osc = start_osc(engine, service=service, host=args.host, port=args.osc, hifi_engine=hifi)
        print(f"neuraldrum: OSC on udp://{args.host}:{osc.address[1]} (docs/osc.md)", flush=True)
    server = make_server(engine, args.host, args.port, args.data, service=service, kit_engine=make_hifi)
    threading.Thread(target=_announce, args=(server, not args.no_browser), daemon=True).start()
    try:
        server.run()
    finally:
        if osc is not None:
            osc.stop()
            service.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="play the instrument in a web browser (XY pad, kit, sequencer)")
    p.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 takes a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--data", default=None, metavar="CORPUS",
                   help="a built corpus to show on the latent map (default: the model's own class summary)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--osc", type=int, default=None, metavar="PORT",
                   help="also listen for OSC (Max, Pure Data; docs/osc.md) on this UDP port, sharing the renderer")
    p.add_argument("--threads", type=int, default=None, help="model threads (default: the backend's choice)")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto",
                   help="auto (default): torch for a model bundle (the faster on a CPU), onnxruntime for an "
                        "export folder; onnx: a bundle exported once into ~/.cache/neuraldrum (a smaller process)")
    p.set_defaults(func=cmd_serve)
