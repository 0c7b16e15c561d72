"""The OSC server: carries out :mod:`.osc` requests with a sound service and answers over UDP.

``neuraldrum osc`` runs it alone; a web server (or any program) starts it beside its own work with
:func:`start_osc`, sharing its :class:`~neuraldrum.service.SoundService`::

    osc = start_osc(engine, service=svc, port=9000)     # a daemon thread; returns at once
    ...
    osc.stop()                                          # closes the socket (and the service, if it made one)

A sound request renders on the service with latest-wins per client (one stream per sender and address: a
pad drag renders only its newest position; a superseded request gets no reply). The finished sound is written
into a :class:`~.soundfolder.SoundFolder` and its path sent back as ``/sound`` to the sender, or to the port
it named with ``/reply``, or to the server's ``reply_port``. Anything wrong gets ``/error`` and the server goes on.
"""
from __future__ import annotations

import collections
import os
import socket
import stat
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from .. import __version__
from ..audio.io import load, resample
from ..engine import Engine
from ..kit import Kit, Slot, load_kit, new_kit
from ..service import ServiceClosed, ServiceOverloaded, SoundService
from ..voice import Controls
from .osc import OscError, Request, make_voice, parse, voice_for
from .soundfolder import SoundFolder

Address = tuple  # (host, port)
MAX_PACKET = 65536
MAX_SOURCES = 256  # encoded samples remembered (oldest forgotten first)
ENCODE_MAX_SECONDS = 30.0
MAX_BACKGROUND = 8  # /encode, /kit/load, /kit/save requests waiting at once
MAX_REPLY_CLIENTS = 1024  # clients whose /reply port is remembered (oldest forgotten first)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # listening here, only this machine can send
MAX_STREAMS = 4096  # streams whose newest sound sent is remembered (oldest forgotten first)


def encode_message(address: str, *args) -> bytes:
    """One OSC message as bytes (ints as int32, floats as float32, everything else as a string)."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, (bool, np.bool_)):
            a = int(a)
        if isinstance(a, (int, np.integer)):
            b.add_arg(int(a), "i")
        elif isinstance(a, (float, np.floating)):
            b.add_arg(float(a), "f")
        else:
            b.add_arg(str(a), "s")
    return b.build().dgram


_FIXED = {"i": 4, "f": 4, "c": 4, "r": 4, "m": 4, "d": 8, "h": 8, "t": 8, "T": 0, "F": 0, "N": 0, "I": 0}


def _string_end(dgram: bytes, start: int) -> int:
    end = dgram.index(b"\0", start)  # ValueError when it runs off the end
    return end + 4 - end % 4  # 1 to 4 NULs, to a multiple of 4


def _check_length(dgram: bytes) -> None:
    """Refuse an OSC message whose bytes are fewer or more than its type tags need (python-osc reads the
    missing bytes of a message cut short as zeros): ValueError."""
    k = _string_end(dgram, 0)  # the address
    if k >= len(dgram):
        return  # no type tags: an (old-style) message without arguments
    pos = _string_end(dgram, k)  # the first argument
    for tag in dgram[k + 1:dgram.index(b"\0", k)].decode("ascii", "replace"):
        if tag in _FIXED:
            pos += _FIXED[tag]
        elif tag in "sS":
            pos = _string_end(dgram, pos)
        elif tag == "b":
            size = int.from_bytes(dgram[pos:pos + 4], "big")
            pos += 4 + size + (-size) % 4
        elif tag not in "[]":
            raise ValueError(f"type tag {tag!r} unknown")
    if pos != len(dgram):
        raise ValueError(f"{len(dgram)} bytes where its type tags need {pos}: cut short or padded wrong")


def model_sha256(engine: Engine) -> str:
    """The checksum of the engine's weights (what kits record)."""
    sha = getattr(engine, "model_sha256", None)
    return sha if sha else engine.bundle.meta["weights"]["sha256"]


def pad_position(engine: Engine, cls: str, z: np.ndarray) -> tuple[float, float, float, float]:
    """Where latent ``z`` sits on the class's pad: (x, y, fine, range), range the smallest of 2, 5, 10 that
    reaches it (coordinates clipped to [-1, 1] beyond range 10). Zeros when the bundle has no PCA axes."""
    try:
        centre = engine.controls_to_z(cls, Controls())
        axes = [engine.controls_to_z(cls, Controls(**{k: 1.0})) - centre for k in ("x", "y", "fine")]
    except ValueError:
        return 0.0, 0.0, 0.0, 2.0
    sd = np.array([float(np.dot(z - centre, d) / max(float(np.dot(d, d)), 1e-12)) for d in axes])  # at range 2
    for r in (2.0, 5.0, 10.0):
        if np.all(np.abs(sd) * 2.0 / r <= 1.0):
            break
    x, y, fine = (float(v) for v in np.clip(sd * 2.0 / r, -1.0, 1.0))
    return x, y, fine, r


class OscApp:
    """The server's behaviour, without the socket: ``handle_packet(data, sender)`` and ``send(bytes, address)``.

    Args:
        service: renders the sounds (its engine answers /info, /encode and kits).
        folder: where sounds are written.
        send: ``send(datagram, (host, port))``, the transport's way to answer.
        reply_port: answer to this port on the sender's host instead of the sender's own port.
        sample_rate: write files at this rate (default: the model's); a host may want 44 100 or 48 000.
        kit: the kit /kit/slot plays (default: a new kit with seed 0).
        hifi: the sound service of the same model rendering in hi-fi: ``quality hifi`` requests and /kit/save
            (None: such requests are refused, and kits are saved as played).
        save_root: the folder /encode, /kit/load and /kit/save must stay inside (links resolved); None: any path
            the server's user may read or write.
    """

    def __init__(self, service: SoundService, folder: SoundFolder, send: Callable[[bytes, Address], None],
                 reply_port: Optional[int] = None, sample_rate: Optional[int] = None, kit: Optional[Kit] = None,
                 hifi: Optional[SoundService] = None, save_root: Union[str, Path, None] = None):
        self.service, self.engine, self.folder, self._send = service, service.engine, folder, send
        self.hifi = hifi
        self.save_root = Path(os.path.realpath(save_root)) if save_root is not None else None
        self.reply_port = reply_port
        self.sample_rate = int(sample_rate or self.engine.sample_rate)
        self.kit = new_kit(self.engine, 0) if kit is None else Kit(list(kit.slots), kit.name, kit.sample_rate,
                                                                   kit.model, kit.info).validate()
        self._lock = threading.RLock()  # kit, sources, reply ports; re-entrant so helpers may take it too
        # (host, port) of a client → the port it named with /reply (per client, not per host: one client's
        # /reply must not take another's answers); at most MAX_REPLY_CLIENTS, the oldest dropped
        self._replies: collections.OrderedDict[tuple, int] = collections.OrderedDict()
        self._sources: collections.OrderedDict[str, tuple] = collections.OrderedDict()  # handle: (class, z)
        self._next_source = 1
        self._seq = 0
        self._sent: collections.OrderedDict[str, int] = collections.OrderedDict()  # stream → newest request sent
        self._pending = 0  # background requests waiting or running
        self._io = ThreadPoolExecutor(2, thread_name_prefix="neuraldrum-osc-io")
        self.counts = collections.Counter()

    # ------------------------------------------------------------------ in
    def handle_packet(self, data: bytes, sender: Address) -> None:
        """Parse one datagram (a message or a bundle) and carry out each message; never raises."""
        from pythonosc.osc_packet import OscPacket

        try:
            messages = [m.message for m in OscPacket(bytes(data)).messages]
            for m in messages:
                _check_length(m.dgram)
        except Exception as e:  # python-osc raises ParseError, and on some corrupt input other errors
            self.counts["malformed"] += 1
            self.reply(sender, "/error", "", f"malformed OSC packet ({type(e).__name__}: {str(e)[:200]})")
            return
        for m in messages:
            self.handle(m.address, list(m.params), sender)

    def handle(self, address: str, args: list, sender: Address) -> None:
        """Carry out one message; every failure becomes an ``/error`` reply."""
        self.counts["messages"] += 1
        try:
            self._dispatch(parse(address, args, self.engine.classes), sender)
        except (OscError, ValueError, FileNotFoundError, FileExistsError, ServiceOverloaded, ServiceClosed) as e:
            self.counts["errors"] += 1
            self.reply(sender, "/error", str(address)[:200], str(e)[:1000])
        except Exception as e:  # a bug must not stop the server; say what happened
            self.counts["errors"] += 1
            self.reply(sender, "/error", str(address)[:200], f"internal error: {type(e).__name__}: {e}"[:1000])

    def _dispatch(self, r: Request, sender: Address) -> None:
        a = r.address
        if a == "/ping":
            self.reply(sender, "/pong", *r.extra)
        elif a == "/reply":
            with self._lock:
                self._replies.pop(tuple(sender[:2]), None)
                self._replies[tuple(sender[:2])] = r.target
                while len(self._replies) > MAX_REPLY_CLIENTS:
                    self._replies.popitem(last=False)
            self.reply(sender, "/reply", r.target)
        elif a == "/classes":
            self.reply(sender, "/classes", *self.engine.classes)
        elif a == "/info":
            e = self.engine
            self.reply(sender, "/info", self.sample_rate, self._n_samples(e.n_samples), e.latent_dim, model_sha256(e),
                       __version__)
        elif a == "/play":
            quality = self._quality(r)
            voice = voice_for(r, self._source(r))
            self._sound(voice, f"osc:{sender}:play", r.id or "play", sender, quality)
        elif a == "/variations":
            quality = self._quality(r)
            base = voice_for(r, self._source(r))
            n, amount, first = r.options.get("n", 4), r.options.get("amount", 0.5), r.options.get("variation", 0)
            for k in range(n):
                v = replace(base, amount=amount, variation_seed=first + k).validate()
                self._sound(v, f"osc:{sender}:variations:{k}", f"{r.id or 'variation'}:{k}", sender, quality)
        elif a == "/kit/slot":
            quality = self._quality(r)
            source = self._source(r)
            with self._lock:
                k = self._slot_index(r.target)
                slot = self.kit.slots[k]
                voice = make_voice(slot.voice, r.pad, r.options, source)
                if voice != slot.voice:
                    self.kit.slots[k] = Slot(slot.name, voice, slot.note)
            self._sound(voice, f"osc:{sender}:slot:{slot.name}", r.id or f"slot:{slot.name}", sender, quality)
        elif a == "/encode":
            self._background(sender, a, self._encode, r, sender)
        elif a == "/kit":
            self._reply_kit(sender)
        elif a == "/kit/new":
            kit = new_kit(self.engine, r.target)
            with self._lock:
                self.kit = kit
            self._reply_kit(sender)
        elif a == "/kit/load":
            self._background(sender, a, self._load_kit, r, sender)
        elif a == "/kit/save":
            self._background(sender, a, self._save_kit, r, sender)

    # ------------------------------------------------------------------ sounds
    def _source(self, r: Request) -> Optional[tuple]:
        name = r.options.get("source")
        if name is None:
            return None
        with self._lock:
            src = self._sources.get(name)
        if src is None:
            raise OscError(f"unknown source {name!r}: /encode a file first (sources are kept for the last "
                           f"{MAX_SOURCES} encodes)")
        return src

    def _quality(self, r: Request) -> str:
        """A request's ``quality``, refused (before anything changes) when this server has no hi-fi."""
        quality = r.options.get("quality", "live")
        if quality == "hifi" and self.hifi is None:
            raise OscError("quality hifi: this server renders live only (it runs an ONNX export, or was started "
                           "without hi-fi)")
        return quality

    def _sound(self, voice, stream: str, tag: str, sender: Address, quality: str = "live") -> None:
        svc = self.hifi if quality == "hifi" else self.service
        stream = f"{stream}:hifi" if quality == "hifi" else stream
        with self._lock:  # requests are numbered: an older one's sound is never sent after a newer one's
            self._seq += 1
            seq = self._seq
        fut = svc.submit(voice, stream=stream)
        self.counts["submitted"] += 1
        fut.add_done_callback(lambda f: self._after(f, voice, tag, sender, quality, stream, seq))

    def _after(self, fut: Future, voice, tag: str, sender: Address, quality: str = "live",
               stream: Optional[str] = None, seq: int = 0) -> None:
        if fut.cancelled():  # superseded by a newer request of the same stream: no reply
            self.counts["superseded"] += 1
            return
        try:
            self._io.submit(self._deliver, fut, voice, tag, sender, quality, stream, seq)
        except RuntimeError:  # the server is stopping
            pass

    def _deliver(self, fut: Future, voice, tag: str, sender: Address, quality: str = "live",
                 stream: Optional[str] = None, seq: int = 0) -> None:
        try:
            wave = fut.result()
            if self.sample_rate != self.engine.sample_rate:
                wave = resample(np.asarray(wave), self.engine.sample_rate, self.sample_rate)
            path = self.folder.write(wave, self.sample_rate, key=(voice, self.sample_rate, quality))
        except Exception as e:
            self.reply(sender, "/error", "/sound", f"{type(e).__name__}: {e}"[:1000])
            return
        with self._lock:  # (checked and sent under the lock: no other sound of the stream goes out in between)
            if stream is not None and self._sent.get(stream, 0) > seq:  # a newer request's (cached) sound went
                self.counts["superseded"] += 1  # out first: this older one would replace it at the client
                return
            if stream is not None:
                self._sent[stream] = seq
                self._sent.move_to_end(stream)
                while len(self._sent) > MAX_STREAMS:
                    self._sent.popitem(last=False)
            self.counts["sounds"] += 1
            self.reply(sender, "/sound", str(path.resolve()), int(len(wave)), self.sample_rate, tag)

    def _n_samples(self, n: int) -> int:
        return int(round(n * self.sample_rate / self.engine.sample_rate))

    def _background(self, sender: Address, address: str, fn, *args) -> None:
        """Run a slow request (file reading, encoding, kit writing) off the receiving thread; at most
        MAX_BACKGROUND wait at once, more are refused as overload."""
        with self._lock:
            if self._pending >= MAX_BACKGROUND:
                raise ServiceOverloaded(f"{self._pending} file requests are waiting; try again later")
            self._pending += 1

        def run():
            try:
                fn(*args)
            except Exception as e:
                self.reply(sender, "/error", address, str(e)[:1000])
            finally:
                with self._lock:
                    self._pending -= 1
        self._io.submit(run)

    # ------------------------------------------------------------------ encode and kits
    def _confined(self, path: str, what: str) -> str:
        """``path``, when it lies inside :attr:`save_root` (links resolved) or there is none; else OscError."""
        if self.save_root is not None:
            real = Path(os.path.realpath(path))
            if real != self.save_root and self.save_root not in real.parents:
                raise OscError(f"{what} {path!r} is outside the folder this server may use ({self.save_root}; "
                               "--save-root)")
        return path

    def _encode(self, r: Request, sender: Address) -> None:
        self._confined(r.target, "path")
        audio = load(r.target, self.engine.sample_rate, max_seconds=ENCODE_MAX_SECONDS)
        e = self.engine.encode(audio, cls=r.options.get("class"))
        with self._lock:
            handle = f"s{self._next_source}"
            self._next_source += 1
            self._sources[handle] = (e.cls, tuple(float(v) for v in e.z))
            while len(self._sources) > MAX_SOURCES:
                self._sources.popitem(last=False)
        x, y, fine, rng = pad_position(self.engine, e.cls, e.z)
        self.reply(sender, "/encoded", handle, e.cls, float(e.probs.get(e.cls, 0.0)), x, y, fine, rng,
                   r.id or "encode")

    def _slot_index(self, target: Union[str, int]) -> int:
        for k, s in enumerate(self.kit.slots):
            if s.name == target or (isinstance(target, int) and s.note == target):
                return k
        if isinstance(target, int):
            raise OscError(f"no slot on note {target}; notes are "
                           f"{' '.join(str(s.note) for s in self.kit.slots if s.note is not None)}")
        raise OscError(f"no slot {target!r}; slots are {' '.join(s.name for s in self.kit.slots)}")

    def _reply_kit(self, sender: Address) -> None:
        with self._lock:
            kit = self.kit
        self.reply(sender, "/kit", kit.name, *[s.name for s in kit.slots])

    def _load_kit(self, r: Request, sender: Address) -> None:
        kit = load_kit(self._confined(r.target, "path"))
        for s in kit.slots:
            self.engine.class_index(s.voice.cls)  # a kit of another model's classes fails here, not at play
        with self._lock:
            self.kit = kit
        self._reply_kit(sender)

    def _save_kit(self, r: Request, sender: Address) -> None:
        from ..export.kits import write_kit_formats

        with self._lock:
            kit = Kit(list(self.kit.slots), self.kit.name, self.kit.sample_rate, self.kit.model, self.kit.info)
        engine = self.hifi.engine if self.hifi is not None else self.engine  # a saved kit is what stays: hi-fi
        out = write_kit_formats(engine, kit, self._confined(r.target, "folder"), r.options["formats"])
        self.reply(sender, "/kit/saved", str(Path(out).resolve()))

    # ------------------------------------------------------------------ out
    def reply_address(self, sender: Address) -> Address:
        """Where answers to ``sender`` go: the port it named with /reply, else ``reply_port``, else itself."""
        with self._lock:
            port = self._replies.get(tuple(sender[:2]), self.reply_port)
        return (sender[0], port) if port else sender

    def reply(self, sender: Address, address: str, *args) -> None:
        try:
            self._send(encode_message(address, *args), self.reply_address(sender))
        except OSError:  # the client went away; UDP has nobody to tell
            self.counts["send_failed"] += 1

    def close(self) -> None:
        self._io.shutdown(wait=True, cancel_futures=True)


class OscServer:
    """A UDP socket and a thread feeding an :class:`OscApp`. Use :func:`start_osc`."""

    def __init__(self, app_factory: Callable[[Callable], OscApp], host: str = "127.0.0.1", port: int = 9000,
                 own_service: Optional[SoundService] = None, own_hifi: Optional[SoundService] = None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise OSError(f"cannot listen for OSC on udp://{host}:{port}: {e.strerror or e}") from None
        self.sock.settimeout(0.2)
        self.app = app_factory(self.sock.sendto)
        self._own_service, self._own_hifi = own_service, own_hifi
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neuraldrum-osc", daemon=True)

    @property
    def address(self) -> Address:
        """(host, port) the server listens on (the real port when 0 was asked for)."""
        return self.sock.getsockname()[:2]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(MAX_PACKET)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue  # e.g. ICMP "port unreachable" from an earlier reply, reported on some systems
            self.app.handle_packet(data, sender[:2])

    def start(self) -> "OscServer":
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run in this thread until :meth:`stop` (from another thread) or Ctrl+C."""
        self._run()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self.app.close()
        self.sock.close()
        for s in (self._own_service, self._own_hifi):
            if s is not None:
                s.close()

    def __enter__(self) -> "OscServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def default_folder(port: int) -> Path:
    """Where sounds go unless told: ``<temp>/neuraldrum-osc-<uid>-<port>``, made private to this user by
    :func:`private_folder` (a shared temp folder is writable by everyone: another user must not be able to
    prepare it, or read or swap the sounds a patch plays)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"neuraldrum-osc-{uid}-{port}"


def private_folder(path: Path) -> Path:
    """Create ``path`` with mode 0700, or check that the existing one is a real folder (not a link) of this user
    that no one else may write. Raises PermissionError naming the folder otherwise."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = path.lstat()
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    if not stat.S_ISDIR(st.st_mode) or not mine or st.st_mode & 0o022:
        raise PermissionError(f"{path}: exists but is not a private folder of this user (a link, another user's, "
                              "or writable by others); pass --out FOLDER")
    return path


def start_osc(engine: Engine, service: Optional[SoundService] = None, host: str = "127.0.0.1", port: int = 9000,
              out: Union[str, Path, None] = None, reply_port: Optional[int] = None,
              sample_rate: Optional[int] = None, kit: Optional[Kit] = None, max_files: int = 256,
              max_bytes: int = 64 * 2 ** 20, thread: bool = True, hifi_engine: Optional[Engine] = None,
              save_root: Union[str, Path, None] = None) -> OscServer:
    """Listen for OSC on ``udp://host:port`` (port 0: a free one; see :attr:`OscServer.address`).

    Args:
        engine: the model.
        service: a sound service to share (a web server's); None makes one, closed by :meth:`OscServer.stop`.
        out: the sounds folder (default :func:`default_folder`); max_files / max_bytes bound it.
        reply_port, sample_rate, kit: see :class:`OscApp`.
        thread: start the receiving thread now (False: call :meth:`OscServer.serve_forever` yourself).
        hifi_engine: the same model rendering in hi-fi (``Engine(bundle, hifi=True)``), for ``quality hifi``
            and /kit/save; its service is the server's own, closed by :meth:`OscServer.stop`.
        save_root: the folder /encode, /kit/load and /kit/save are confined to (see :class:`OscApp`). None: any
            path on 127.0.0.1, localhost or ::1; on any other ``host``, the sounds folder.
    """
    own = SoundService(engine) if service is None else None
    svc = service or own
    hifi = SoundService(hifi_engine) if hifi_engine is not None else None
    try:
        folder = SoundFolder(out if out is not None else private_folder(default_folder(port)), max_files, max_bytes)
        if save_root is None and host not in LOCAL_HOSTS:  # other machines: no path outside one folder
            save_root = folder.root
        if save_root is not None and not Path(save_root).is_dir():
            raise NotADirectoryError(f"--save-root {save_root}: not a folder")
        server = OscServer(lambda send: OscApp(svc, folder, send, reply_port, sample_rate, kit, hifi, save_root),
                           host, port, own, hifi)
    except BaseException:
        for s in (own, hifi):
            if s is not None:
                s.close()
        raise
    return server.start() if thread else server


__all__ = ["OscApp", "OscServer", "start_osc", "encode_message", "pad_position", "default_folder", "private_folder"]
