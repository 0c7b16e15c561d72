"""Verbs for playing from other programs: ``osc`` (Max, Pure Data), ``play --midi`` (a controller), ``render``
(a MIDI file → a WAV). Each parses its arguments and calls :mod:`.osc_server`, :mod:`.live` or :mod:`.render`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _engine(args: argparse.Namespace):
    from ..engine import playing_engine

    return playing_engine(args.model, threads=args.threads, backend=args.backend)


def _hifi_engine(args: argparse.Namespace):
    """The model rendering every sound in hi-fi, in the backend the options ask for."""
    from ..engine import Engine, hifi_maker, player_model

    model, backend = player_model(args.model, args.backend)
    if backend == "onnx" and not (model is not None and (Path(model) / "export.json").is_file()):
        make = hifi_maker(args.model, args.threads, like=_engine(args))  # (a bundle, exported once)
        if make is None:
            raise ValueError("--hifi: the cached ONNX export of this model has no mixer graph; use --backend torch")
        return make()
    return Engine(model, threads=args.threads, backend=backend, hifi=True)


def _kits(paths):
    from ..kit import load_kit

    return [load_kit(p) for p in paths or ()]


def _mixer(path, kit):
    """The checked ``mixer`` section of the kit.json at ``path`` (None when it has none)."""
    from ..beat import load_sections

    return load_sections(path, [s.name for s in kit.slots]).get("mixer")


def _channel(text: str):
    if text == "all":
        return None
    if not text.isdigit() or not 1 <= int(text) <= 16:
        raise ValueError(f"--channel {text!r}: use 1..16 or 'all'")
    return int(text) - 1


def cmd_osc(args: argparse.Namespace) -> int:
    from .osc_server import default_folder, private_folder, start_osc

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"neuraldrum: warning: OSC on {args.host}: other machines can reach it, and /encode, /kit/load and "
              "/kit/save read and write files on this one", file=sys.stderr)
    kits = _kits([args.kit] if args.kit else [])
    engine = _engine(args)
    from ..engine import hifi_maker

    make_hifi = hifi_maker(args.model, args.threads, like=engine)  # for `quality hifi` and /kit/save
    try:
        out = Path(args.out) if args.out else private_folder(default_folder(args.port))  # 0700, never a link
        server = start_osc(engine, host=args.host, port=args.port, out=out, reply_port=args.reply_port,
                           sample_rate=args.sample_rate, kit=kits[0] if kits else None, max_files=args.max_files,
                           thread=False, hifi_engine=make_hifi() if make_hifi is not None else None,
                           save_root=args.save_root)
    except OSError as e:
        print(f"neuraldrum: error: {e}", file=sys.stderr)
        return 1
    host, port = server.address
    to = f"port {args.reply_port}" if args.reply_port else "the sender"
    print(f"neuraldrum: OSC on udp://{host}:{port}, sounds in {out.resolve()}/ ({args.max_files} files kept), "
          f"replies to {to} (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from .live import DeviceError, list_devices, play_live
    from .midi import parse_cc_map

    if args.list:
        print(list_devices())
        return 0
    if args.midi is None and not args.virtual:
        print("neuraldrum: error: say where notes come from: --midi [PORT] (or --virtual); --list shows the ports",
              file=sys.stderr)
        return 2
    cc_map = parse_cc_map(args.cc)
    channel = _channel(args.channel)
    kits = _kits(args.kit)
    from ..service import SoundService

    engine = _engine(args)
    from ..engine import hifi_maker

    make_hifi = hifi_maker(args.model, args.threads, like=engine)  # kits, and still slots, in hi-fi
    hifi = SoundService(make_hifi()) if make_hifi is not None else None
    try:
        with SoundService(engine) as service:
            play_live(service, port=args.midi or None, virtual=args.virtual, kits=kits, cc_map=cc_map,
                      channel=channel, device=args.device, block=args.block, hifi=hifi)
    except DeviceError as e:
        print(f"neuraldrum: error: {e}", file=sys.stderr)
        return 1
    finally:
        if hifi is not None:
            hifi.close()
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from ..audio.io import save_wav
    from .midi import parse_cc_map
    from .render import read_midi, render_midi

    out = Path(args.out)
    if Path(args.midi_file).exists() and out.exists() and out.resolve() == Path(args.midi_file).resolve():
        raise ValueError(f"-o {args.out}: that is the MIDI file being rendered")
    if out.suffix.lower() != ".wav":
        raise ValueError(f"-o {args.out}: the song is written as a WAV; name it ….wav")
    mid = read_midi(args.midi_file)  # a bad file fails before the model loads
    kits = _kits(args.kit)
    mixers = [_mixer(p, k) for p, k in zip(args.kit or (), kits)]  # the page's mixer, in kit.json
    if kits and not args.hifi and all(k.info.get("hifi") for k in kits):  # play the sounds as they were made
        args.hifi = True
        print("neuraldrum: rendering in hi-fi, as the kit was made (kit --hifi)", file=sys.stderr)
    if os.path.lexists(out) and not args.overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it")
    engine = _hifi_engine(args) if args.hifi else _engine(args)  # offline, hi-fi: every sound in hi-fi
    r = render_midi(engine, mid, kits, sample_rate=args.sample_rate, channel=_channel(args.channel),
                    cc_map=parse_cc_map(args.cc), kit_seed=args.seed, limit=not args.no_limit, mixers=mixers)
    path = save_wav(args.out, r.audio, r.sample_rate, "float" if args.float else "16")
    info = {"file": str(path), "seconds": round(r.seconds, 3), "samples": len(r.audio), "sample_rate": r.sample_rate,
            "notes": r.notes, "muted_notes": r.muted_notes, "channels": 1 if r.audio.ndim == 1 else 2,
            "other_channels": {str(c + 1): n for c, n in sorted(r.other_channels.items())},
            "skipped_notes": r.skipped_notes, "cc_renders": r.renders, "kits": r.kits, "gain": round(r.gain, 4)}
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        note = f", scaled by {r.gain:.3f} to stay under -1 dBFS" if r.gain != 1.0 else ""
        skipped = f" ({r.skipped_notes} notes with no slot skipped)" if r.skipped_notes else ""
        print(f"{path}: {r.seconds:.2f} s at {r.sample_rate} Hz, {r.notes} notes{skipped}{note}")
    if r.other_channels and not r.notes:  # (the song's drums are elsewhere: say where, not just "0 notes")
        where = ", ".join(f"{c + 1} ({n})" for c, n in sorted(r.other_channels.items()))
        print(f"neuraldrum: no notes on channel {args.channel}; the file has notes on channel {where}: "
              f"--channel {min(r.other_channels, key=lambda c: -r.other_channels[c]) + 1} (or all) plays them",
              file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p, backend="auto"):
        p.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
        p.add_argument("--backend", choices=("auto", "onnx", "torch"), default=backend,
                       help=f"{backend} (default). auto: onnxruntime for the default model (its graphs ship in the "
                            "package) and for an export folder, torch for a model bundle; onnx: a bundle exported "
                            "once into the cache; torch: PyTorch (the [train] extra)")

    cc_help = "controllers that move the last-hit slot's pad, TARGET=CC (default x=16,y=17,fine=18)"

    p = sub.add_parser("osc", help="play from Max/MSP, Pure Data or any OSC client (UDP; docs/osc.md)")
    p.add_argument("--port", type=int, default=9000, help="UDP port to listen on (default 9000; 0: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--out", default=None, help="folder for the sounds (default: <temp>/neuraldrum-osc-<uid>-<port>, private to you)")
    p.add_argument("--reply-port", type=int, default=None,
                   help="send replies to this port on the sender's host (default: the sender's own port; "
                        "a client may also send /reply PORT)")
    p.add_argument("--sample-rate", type=int, default=None, help="write sounds at this rate (default: the model's)")
    p.add_argument("--kit", default=None, help="kit.json (or kit folder) for /kit/slot (default: kit of seed 0)")
    p.add_argument("--max-files", type=int, default=256, help="sounds kept in the folder (oldest deleted first)")
    p.add_argument("--save-root", default=None, metavar="DIR",
                   help="/encode, /kit/load and /kit/save may use paths inside this folder only (default: any "
                        "path; with --host other than 127.0.0.1, localhost or ::1: the sounds folder)")
    common(p)
    p.set_defaults(func=cmd_osc)

    p = sub.add_parser("play", help="a playable drum machine: MIDI notes in, sound out (needs a sound card)")
    p.add_argument("--midi", nargs="?", const="", default=None, metavar="PORT",
                   help="MIDI input port (a name or part of one; default: the first)")
    p.add_argument("--virtual", action="store_true", help="create a virtual MIDI input named 'neuraldrum'")
    p.add_argument("--list", action="store_true", help="list MIDI inputs and the audio output, then exit")
    p.add_argument("--kit", action="append", default=None,
                   help="kit.json or kit folder; repeat for more (program change p plays kit p mod n); "
                        "default: program p plays the kit of seed p")
    p.add_argument("--cc", default="x=16,y=17,fine=18", help=cc_help)
    p.add_argument("--channel", default="all", help="MIDI channel 1..16 to listen to, or 'all' (default)")
    p.add_argument("--device", default=None, help="sound card (a sounddevice name or index; default: the system's)")
    p.add_argument("--block", type=int, default=128, help="audio block in samples (default 128)")
    common(p)
    p.set_defaults(func=cmd_play)

    p = sub.add_parser("render", help="render a General MIDI drum track (a .mid file) with a kit into a WAV")
    p.add_argument("midi_file", metavar="MIDI_FILE")
    p.add_argument("-o", "--out", required=True, help="output WAV (refused if it exists, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output WAV")
    p.add_argument("--kit", action="append", default=None,
                   help="kit.json or kit folder; repeat for more (program change p plays kit p mod n)")
    p.add_argument("--seed", type=int, default=0, help="without --kit: the seed of the kit (program p: seed p)")
    p.add_argument("--sample-rate", type=int, default=None, help="output rate (default: the model's own)")
    p.add_argument("--channel", default="10", help="MIDI channel 1..16 to play, or 'all' (default 10, GM drums)")
    p.add_argument("--cc", default="x=16,y=17,fine=18", help=cc_help)
    p.add_argument("--float", action="store_true", help="write 32-bit float samples (default 16-bit)")
    p.add_argument("--no-limit", action="store_true",
                   help="do not scale a song whose peak passes -1 dBFS (16-bit files then clip)")
    p.add_argument("--json", action="store_true", help="print what was rendered as JSON")
    p.add_argument("--hifi", action="store_true",
                   help="render every sound in hi-fi: Griffin-Lim iterations started from the inverter's output "
                        "(≈ 20 ms more a sound); the default when every --kit was made so (kit --hifi)")
    common(p)
    p.set_defaults(func=cmd_render)
