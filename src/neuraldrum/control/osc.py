"""The OSC protocol: every address, its arguments, and the request it makes. Pure: no sockets, no model.

Messages come from Max (``udpsend``), Pure Data (``oscformat`` → ``netsend -u -b``) or any OSC client.
Pd sends every number as a float, so a whole float is taken wherever an integer is expected (a class index,
a seed, a port). Arguments are positional first, then ``key value`` pairs in any order::

    /play snare 0.3 -0.2 0.1 range 5 seed 7 tune -2 id pad1

:func:`parse` turns ``(address, args)`` into a :class:`Request` or raises :class:`OscError`, whose text the
server sends back in ``/error``; :func:`make_voice` applies a request's pad and keys to a starting
:class:`~neuraldrum.voice.Voice`. The server (:mod:`.osc_server`) carries requests out. ``ADDRESSES`` is the
table docs/osc.md is written from (a test checks they agree).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

from ..engine import QUALITIES
from ..voice import Controls, Voice

MAX_ARGS = 64  # arguments in one message
MAX_STRING = 1024  # characters in one string argument (a path, a name)
MAX_VARIATIONS = 16


class OscError(ValueError):
    """A message the server cannot carry out; the text goes back to the sender as ``/error <address> <text>``."""


# address: (arguments, what it does, what comes back). Keys are listed in KEYS.
ADDRESSES: dict[str, tuple[str, str, str]] = {
    "/play": ("class [x y fine] [key value …]",
              "render a sound: the class's pad at (x, y) and fine knob (each in [-1, 1], default 0), moved from "
              "the class centre, a prior draw (`seed`) or an encoded sample (`source`)",
              "/sound path n_samples sample_rate id"),
    "/variations": ("class [x y fine] [key value …]",
                    "render `n` variations (default 4) of the /play sound, `amount` (default 0.5) of latent noise "
                    "with seeds `variation`, `variation`+1, …",
                    "one /sound per variation, id `<id>:<k>`"),
    "/encode": ("path [key value …]",
                "encode a sound file on the server's machine; keys `class` (encode as this class) and `id`",
                "/encoded source class probability x y fine range id"),
    "/kit": ("", "describe the server's kit", "/kit name slot1 slot2 …"),
    "/kit/new": ("[seed]", "a new kit: one prior sample per class (seed: the kit seed, default 0)",
                 "/kit name slot1 slot2 …"),
    "/kit/load": ("path", "load a kit.json (or a kit folder) on the server's machine", "/kit name slot1 slot2 …"),
    "/kit/slot": ("slot [x y fine] [key value …]",
                  "play a kit slot (a name or a MIDI note); pad, keys or a `source` given change the slot, "
                  "so /kit/save keeps them", "/sound path n_samples sample_rate id (id `slot:<name>` by default)"),
    "/kit/save": ("folder [formats]",
                  "write the kit: WAVs + kit.json, and `sfz`, `hydrogen` when listed (e.g. `wav,sfz,hydrogen`); "
                  "rendered in hi-fi when the server has it",
                  "/kit/saved folder"),
    "/classes": ("", "the model's classes, in index order", "/classes kick snare …"),
    "/info": ("", "the model and server", "/info sample_rate n_samples latent_dim model_sha256 version"),
    "/reply": ("port", "send this host's replies to `port` from now on (for Max's udpreceive, Pd's netreceive)",
               "/reply port (to the new port)"),
    "/ping": ("[anything …]", "check the server is there", "/pong [the same arguments]"),
}
REPLIES = {
    "/sound": "path (a WAV, replaced files recycled), n_samples, sample_rate, id",
    "/error": "the address that failed (\"\" for an unreadable packet) and what was wrong",
}


def _number(key: str, lo: float, hi: float, lo_open: bool = False) -> Callable[[Any], float]:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise OscError(f"{key} must be a number, got {v!r}")
        if v < lo or v > hi or (lo_open and v == lo):
            raise OscError(f"{key}={v:g} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
        return float(v)
    return conv


def _integer(key: str, lo: int, hi: int) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
            raise OscError(f"{key} must be a whole number, got {v!r}")
        if not lo <= v <= hi:
            raise OscError(f"{key}={int(v)} must be in [{lo}, {hi}]")
        return int(v)
    return conv


def _text(key: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise OscError(f"{key} must be a string, got {type(v).__name__}")
        s = v if isinstance(v, str) else f"{v:g}"
        if not s or not s.isprintable():
            raise OscError(f"{key} must be a non-empty printable string")
        return s
    return conv


def _choice(key: str, choices: Sequence[str]) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise OscError(f"{key} {v!r}: use {' or '.join(choices)}")
        return v
    return conv


def _path(key: str) -> Callable[[Any], str]:
    """An absolute path: a client does not know the server's working folder."""
    def conv(v: Any) -> str:
        s = _text(key)(v)
        if not os.path.isabs(s):
            raise OscError(f"{key} {s!r} must be an absolute path (the server's working folder is not yours)")
        return s
    return conv


# the `key value` pairs of the sound-making addresses
SOUND_KEYS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "range": (_number("range", 0.0, 1000.0, lo_open=True), "how far the pad reaches (2, 5, 10; default 2)"),
    "seed": (_integer("seed", 0, 2 ** 31 - 1), "start from this prior draw instead of the class centre"),
    "temperature": (_number("temperature", 0.0, 10.0), "spread of the prior draw (default: the model's)"),
    "source": (_text("source"), "start from an encoded sample (the handle /encoded returned)"),
    "amount": (_number("amount", 0.0, 100.0), "latent noise added (a variation; default 0)"),
    "variation": (_integer("variation", 0, 2 ** 31 - 1), "seed of the variation noise (default 0)"),
    "tune": (_number("tune", -12.0, 12.0), "semitones; pitch and length change together"),
    "decay": (_number("decay", 0.0, 60.0, lo_open=True), "seconds to fall 60 dB (default: the sound's own)"),
    "velocity": (_number("velocity", 1.0, 127.0), "1..127 → gain (velocity/127)²"),
    "length": (_number("length", 0.0, 10.0, lo_open=True), "seconds of the file (default: the model's 1 s)"),
    "id": (_text("id"), "any tag; comes back in the reply"),
    "quality": (_choice("quality", QUALITIES),
                "live (default) or hifi: Griffin-Lim iterations after the inverter, ≈ 20 ms more a sound"),
}
VARIATION_KEYS = {**SOUND_KEYS, "n": (_integer("n", 1, MAX_VARIATIONS), f"how many (1..{MAX_VARIATIONS}, default 4)")}
ENCODE_KEYS = {"class": (_text("class"), "encode as this class (default: the predicted one)"),
               "id": SOUND_KEYS["id"]}


@dataclass
class Request:
    """A parsed message. ``target``: the class, slot, path, folder, seed or port the address acts on;
    ``pad``: (x, y, fine) when given; ``options``: the validated ``key value`` pairs; ``extra``: /ping's args."""

    address: str
    target: Any = None
    pad: Optional[tuple[float, float, float]] = None
    options: dict = field(default_factory=dict)
    extra: tuple = ()

    @property
    def id(self) -> str:
        return self.options.get("id", "")


def check_args(args: Sequence[Any]) -> None:
    """Refuse what no address takes: too many arguments, blobs, over-long strings, OSC's exotic types."""
    if len(args) > MAX_ARGS:
        raise OscError(f"{len(args)} arguments; at most {MAX_ARGS}")
    for k, a in enumerate(args):
        if isinstance(a, (bytes, bytearray)):
            raise OscError(f"argument {k + 1}: blobs are not accepted")
        if isinstance(a, str) and len(a) > MAX_STRING:
            raise OscError(f"argument {k + 1}: a string of {len(a)} characters; at most {MAX_STRING}")
        if a is not None and not isinstance(a, (str, int, float)):
            raise OscError(f"argument {k + 1}: type {type(a).__name__} is not accepted (use numbers and strings)")
        if isinstance(a, float) and not math.isfinite(a):
            raise OscError(f"argument {k + 1}: {a} is not a finite number")


def class_name(v: Any, classes: Sequence[str]) -> str:
    """A class given by name or by index (Pd's menus send the index as a float)."""
    if isinstance(v, str):
        if v not in classes:
            raise OscError(f"unknown class {v!r}; choose from {' '.join(classes)}")
        return v
    k = _integer("class index", 0, len(classes) - 1)(v)
    return classes[k]


def _pad_and_keys(address: str, args: Sequence[Any], keys: dict, pad_ok: bool = True) -> tuple[Optional[tuple], dict]:
    """Up to three leading numbers (x, y, fine) when ``pad_ok``, then ``key value`` pairs."""
    pad: list[float] = []
    k = 0
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    while pad_ok and k < len(args) and len(pad) < 3 and number(args[k]):
        pad.append(_number(("x", "y", "fine")[len(pad)], -1.0, 1.0)(args[k]))
        k += 1
    rest = args[k:]
    if pad_ok and len(pad) < 3 and rest and not (isinstance(rest[0], str) and rest[0] in keys) \
            and (len(rest) % 2 or not isinstance(rest[0], str)):  # (an even count of words: a key misspelt)
        raise OscError(f"{address}: {('x', 'y', 'fine')[len(pad)]} must be a number in [-1, 1], not {rest[0]!r} "
                       f"(after the pad: `key value` pairs, keys {' '.join(keys)})")
    if len(rest) % 2:
        raise OscError(f"{address}: `key value` pairs expected after the {'pad' if pad_ok else 'first argument'}, "
                       f"but {rest[-1]!r} has no partner; keys are {' '.join(keys)}")
    options: dict = {}
    for key, value in zip(rest[::2], rest[1::2]):
        if not isinstance(key, str) or key not in keys:
            raise OscError(f"unknown key {key!r} for {address}; keys are {' '.join(keys)}")
        if key in options:
            raise OscError(f"key {key!r} given twice")
        options[key] = keys[key][0](value)
    if "seed" in options and "source" in options:
        raise OscError("give `seed` or `source`, not both: each is a starting point")
    if pad:
        pad += [0.0] * (3 - len(pad))
    return (tuple(pad) if pad else None), options


def parse(address: Any, args: Sequence[Any], classes: Sequence[str]) -> Request:
    """``(address, args)`` → a :class:`Request`, or :class:`OscError` saying what is wrong."""
    if not isinstance(address, str) or address not in ADDRESSES:
        raise OscError(f"unknown address {str(address)[:80]!r}; addresses are {' '.join(ADDRESSES)}")
    args = list(args)
    check_args(args)
    if address == "/ping":
        return Request(address, extra=tuple(args))
    if address in ("/play", "/variations", "/kit/slot"):
        if not args:
            raise OscError(f"{address} needs a {'slot' if address == '/kit/slot' else 'class'} first")
        if address == "/kit/slot":
            target = _text("slot")(args[0]) if isinstance(args[0], str) else _integer("slot note", 0, 127)(args[0])
        else:
            target = class_name(args[0], classes)
        pad, options = _pad_and_keys(address, args[1:], VARIATION_KEYS if address == "/variations" else SOUND_KEYS)
        return Request(address, target, pad, options)
    if address == "/encode":
        if not args:
            raise OscError("/encode needs a file path")
        _, options = _pad_and_keys(address, args[1:], ENCODE_KEYS, pad_ok=False)
        if "class" in options:
            options["class"] = class_name(options["class"], classes)
        return Request(address, _path("path")(args[0]), None, options)
    if address in ("/kit", "/classes", "/info"):
        if args:
            raise OscError(f"{address} takes no arguments")
        return Request(address)
    if address == "/kit/new":
        if len(args) > 1:
            raise OscError("/kit/new takes at most a seed")
        return Request(address, _integer("seed", 0, 2 ** 31 - 1)(args[0]) if args else 0)
    if address == "/kit/load":
        if len(args) != 1:
            raise OscError("/kit/load takes one path")
        return Request(address, _path("path")(args[0]))
    if address == "/kit/save":
        if not 1 <= len(args) <= 2:
            raise OscError("/kit/save takes a folder and optionally formats (e.g. wav,sfz,hydrogen)")
        from ..export.kits import parse_formats

        try:
            formats = parse_formats(_text("formats")(args[1]) if len(args) == 2 else "wav")
        except ValueError as e:
            raise OscError(str(e)) from None
        return Request(address, _path("folder")(args[0]), options={"formats": formats})
    if address == "/reply":
        if len(args) != 1:
            raise OscError("/reply takes one port number")
        return Request(address, _integer("port", 1, 65535)(args[0]))
    raise OscError(f"{address} is not handled")  # unreachable: every address is handled above


def make_voice(base: Voice, pad: Optional[tuple], options: dict, source: Optional[tuple] = None) -> Voice:
    """``base`` moved by a request: ``source`` (class, z) replaces its start, ``seed``/``temperature`` choose a
    prior draw, the pad and ``range`` set its controls, ``amount``/``variation`` a variation, the sampler keys
    its sampler. Returns a validated voice (ValueError naming the field otherwise)."""
    v = base
    if source is not None:
        v = replace(v, cls=source[0]).with_z(source[1])
    if "seed" in options or "temperature" in options:
        v = replace(v, z=None, seed=options.get("seed", v.seed), temperature=options.get("temperature", v.temperature))
    if pad is not None or "range" in options:
        c = v.controls or Controls()
        x, y, fine = pad if pad is not None else (c.x, c.y, c.fine)
        v = replace(v, controls=replace(c, x=x, y=y, fine=fine, range=options.get("range", c.range)))
    if "amount" in options or "variation" in options:
        amount = options.get("amount", v.amount)
        v = replace(v, amount=amount, variation_seed=options.get("variation", v.variation_seed or 0))
    sampler = {k: options[k] for k in ("tune", "decay", "velocity", "length") if k in options}
    if sampler:
        v = replace(v, sampler=replace(v.sampler, **sampler))
    return v.validate()


def voice_for(request: Request, source: Optional[tuple] = None) -> Voice:
    """The voice a /play or /variations request asks for, starting at its class centre, or at ``source``'s
    latent decoded as the request's class (the class /encoded named remakes the sample; another transfers it)."""
    return replace(make_voice(Voice(request.target), request.pad, request.options, source), cls=request.target)

