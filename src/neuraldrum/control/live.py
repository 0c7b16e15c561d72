"""Live MIDI play: ``neuraldrum play --midi [PORT]``. A MIDI input port (mido + python-rtmidi) feeds a
:class:`~.midi.DrumMachine`; its hits go to a :class:`~.mixer.Mixer` that the sound card (sounddevice) pulls
blocks from; control changes and kit changes render on a :class:`~neuraldrum.service.SoundService` in the
background, and the new sound replaces the old only once it is ready, so nothing drops out.

:class:`LivePlayer` holds all of that except the devices: tests feed it ``mido`` messages and pull blocks
from :meth:`LivePlayer.callback` as a sound card would. The device helpers say clearly what is missing.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Optional, Sequence

import numpy as np

from ..kit import Kit, new_kit
from ..service import ServiceClosed, ServiceOverloaded, SoundService
from .midi import DrumMachine, Hit, Render, SelectKit
from .mixer import Mixer


class DeviceError(RuntimeError):
    """A MIDI port or sound card that is missing or cannot be opened; the text says which and what to do."""


class LivePlayer:
    """The drum machine wired to a sound service and a mixer (no devices).

    Args:
        service: renders the sounds (its engine is the model).
        kits: program p plays ``kits[p % len(kits)]``; none given: the kit of seed p (``new_kit``).
        sample_rate: the sound card's rate.
        cc_map, channel: see :class:`~.midi.DrumMachine`.
        hifi: the same model rendering in hi-fi: kits are rendered with it, and a slot a control change
            re-rendered live is rendered again in hi-fi once its controls have been still for ``HIFI_AFTER_S``
            (None: everything on ``service``).
    """

    HIFI_AFTER_S = 0.25

    def __init__(self, service: SoundService, kits: Sequence[Kit] = (), sample_rate: Optional[int] = None,
                 cc_map: Optional[dict] = None, channel: Optional[int] = None, hifi: Optional[SoundService] = None):
        self.service, self.engine, self.hifi = service, service.engine, hifi
        self._timers: dict = {}  # slot → the pending hi-fi re-render
        self.kits = list(kits)
        self.sample_rate = int(sample_rate or self.engine.sample_rate)
        self.mixer = Mixer(self.sample_rate)
        self._lock = threading.Lock()  # the machine is touched by the MIDI thread, the renderer and kit loads
        self.machine = DrumMachine(self._kit(None), self.engine.sample_rate, self.sample_rate, cc_map, channel)
        self._program: Optional[int] = None
        self.errors: list[str] = []
        self.counts = {"hits": 0, "silent_hits": 0, "renders": 0, "stale_renders": 0, "hifi_renders": 0}

    def _kit(self, program: Optional[int]) -> Kit:
        if self.kits:
            return self.kits[0 if program is None else program % len(self.kits)]
        return new_kit(self.engine, 0 if program is None else program)

    def _render_kit(self, kit: Kit, timeout: Optional[float] = 30.0) -> list[np.ndarray]:
        svc = self.hifi or self.service  # kits are what is played: in hi-fi when there is one
        futures = [svc.submit(s.voice) for s in kit.slots]  # one batch on the service, cached after
        return [f.result(timeout) for f in futures]

    def prepare(self, timeout: Optional[float] = 30.0) -> "LivePlayer":
        """Render the first kit before playing starts (blocks)."""
        kit = self.machine.kit
        waves = self._render_kit(kit, timeout)
        with self._lock:
            self.machine.load_kit(kit, waves)
        return self

    # ------------------------------------------------------------------ MIDI in (any thread)
    def on_message(self, msg) -> None:
        """Handle one ``mido`` message: play, re-render, or change kit. Never blocks on the model."""
        with self._lock:
            events = self.machine.handle(msg)
            sounds = [(ev, self.machine.sound(ev.key)) for ev in events if isinstance(ev, Hit)]
        for ev, wave in sounds:
            if wave is None:
                self.counts["silent_hits"] += 1
                continue
            self.mixer.play(wave, ev.gain, ev.group, ev.chokes)
            self.counts["hits"] += 1
        for ev in events:
            if isinstance(ev, Render):
                self._submit(ev)
            elif isinstance(ev, SelectKit):
                threading.Thread(target=self._switch, args=(ev.program,), daemon=True).start()

    def _submit(self, ev: Render) -> None:
        try:
            fut = self.service.submit(ev.voice, stream=f"midi-cc:{ev.slot}")  # latest-wins per slot
        except (ServiceOverloaded, ServiceClosed, ValueError) as e:
            self.errors.append(str(e))
            return
        fut.add_done_callback(lambda f: self._rendered(f, ev))

    def _rendered(self, fut: Future, ev: Render, hifi: bool = False) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self.errors.append(str(fut.exception()))
            return
        with self._lock:
            kept = self.machine.set_wave(ev.slot, ev.voice, fut.result())  # (False: the slot moved on since)
        self.counts[("hifi_renders" if hifi else "renders") if kept else "stale_renders"] += 1
        if kept and not hifi and self.hifi is not None:
            with self._lock:
                old = self._timers.pop(ev.slot, None)
                t = self._timers[ev.slot] = threading.Timer(self.HIFI_AFTER_S, self._submit_hifi, args=(ev,))
            if old is not None:
                old.cancel()
            t.daemon = True
            t.start()

    def _submit_hifi(self, ev: Render) -> None:
        """The slot's controls have been still: the same voice again in hi-fi (kept only if still current)."""
        try:
            fut = self.hifi.submit(ev.voice, stream=f"midi-cc-hifi:{ev.slot}")
        except (ServiceOverloaded, ServiceClosed, ValueError) as e:
            self.errors.append(str(e))
            return
        fut.add_done_callback(lambda f: self._rendered(f, ev, hifi=True))

    def close(self) -> None:
        """Cancel pending hi-fi re-renders."""
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for t in timers:
            t.cancel()

    def _switch(self, program: int) -> None:
        self._program = program
        kit = self._kit(program)
        try:
            waves = self._render_kit(kit)
        except Exception as e:
            self.errors.append(f"kit of program {program}: {e}")
            return
        with self._lock:
            if self._program == program:  # a later program change wins
                self.machine.load_kit(kit, waves)

    # ------------------------------------------------------------------ audio out (the sound card's thread)
    def callback(self, outdata: np.ndarray, frames: int, time=None, status=None) -> None:
        """A sounddevice output callback: fills ``outdata`` (frames, channels) with the mix."""
        block = self.mixer.render(frames)
        np.clip(block, -1.0, 1.0, out=block)
        outdata[:] = block[:, None]


# ---------------------------------------------------------------------- devices


def midi_inputs() -> list[str]:
    """The MIDI input ports; DeviceError when MIDI itself is unavailable."""
    try:
        import mido

        return list(mido.get_input_names())
    except ImportError as e:
        raise DeviceError(f"MIDI needs mido and python-rtmidi ({e}); pip install 'neuraldrum[live]'") from None
    except Exception as e:  # rtmidi: no ALSA sequencer, no CoreMIDI, …
        raise DeviceError(f"MIDI is not available on this machine ({type(e).__name__}: {e})") from None


def resolve_port(port: Optional[str]) -> str:
    """The input port to open: ``port`` (a name or a unique part of one), or the first port when None."""
    names = midi_inputs()
    if not names:
        raise DeviceError("no MIDI input ports: plug in a controller, create one with --virtual, or render "
                          "a MIDI file offline with `neuraldrum render`")
    if port is None:
        return names[0]
    if port in names:
        return port
    matches = [n for n in names if port.lower() in n.lower()]
    if len(matches) != 1:
        raise DeviceError(f"no MIDI input port {port!r}; ports: {'; '.join(names)}")
    return matches[0]


def open_midi_input(port: Optional[str], virtual: bool, callback):
    """Open ``port`` (see :func:`resolve_port`), or a virtual input port named "neuraldrum"."""
    import mido

    try:
        if virtual:
            return mido.open_input("neuraldrum", virtual=True, callback=callback)
        return mido.open_input(resolve_port(port), callback=callback)
    except DeviceError:
        raise
    except Exception as e:
        what = "a virtual MIDI port" if virtual else f"MIDI port {port!r}"
        raise DeviceError(f"cannot open {what} ({type(e).__name__}: {e})") from None


def audio_output(device=None) -> dict:
    """The sound card that will play (sounddevice's device info); DeviceError when there is none."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:  # OSError: the PortAudio library is missing
        raise DeviceError(f"live audio needs sounddevice and PortAudio ({e}); pip install 'neuraldrum[live]' "
                          "and install libportaudio2") from None
    try:
        info = sd.query_devices(device, kind="output")
    except Exception as e:
        raise DeviceError(f"no audio output device ({type(e).__name__}: {e}); render offline with "
                          "`neuraldrum render song.mid -o out.wav`") from None
    if not info or info.get("max_output_channels", 0) < 1:
        raise DeviceError("no audio output device; render offline with `neuraldrum render song.mid -o out.wav`")
    return dict(info)


def list_devices() -> str:
    """A text listing of MIDI inputs and audio outputs, each saying what is missing instead of failing."""
    lines = ["MIDI inputs:"]
    try:
        lines += [f"  {n}" for n in midi_inputs()] or ["  (none)"]
    except DeviceError as e:
        lines.append(f"  (unavailable: {e})")
    lines.append("audio output:")
    try:
        info = audio_output()
        lines.append(f"  {info.get('name')} ({info.get('default_samplerate', 0):g} Hz)")
    except DeviceError as e:
        lines.append(f"  (unavailable: {e})")
    return "\n".join(lines)


def play_live(service: SoundService, port: Optional[str] = None, virtual: bool = False, kits: Sequence[Kit] = (),
              cc_map: Optional[dict] = None, channel: Optional[int] = None, device=None, block: int = 128,
              stop: Optional[threading.Event] = None, announce=print,
              hifi: Optional[SoundService] = None) -> LivePlayer:
    """Play until ``stop`` is set (or Ctrl+C). Checks the sound card and MIDI port first (DeviceError).
    ``hifi``: see :class:`LivePlayer`."""
    import sounddevice as sd

    info = audio_output(device)
    if not virtual:
        port = resolve_port(port)  # fail before the kit renders
    player = LivePlayer(service, kits, int(info.get("default_samplerate") or 48000), cc_map, channel,
                        hifi=hifi).prepare()
    stop = stop or threading.Event()
    inport = open_midi_input(port, virtual, player.on_message)
    try:
        with sd.OutputStream(samplerate=player.sample_rate, blocksize=block, channels=1, dtype="float32",
                             latency="low", device=device, callback=player.callback) as stream:
            announce(f"neuraldrum: playing {player.machine.kit.name} from MIDI {inport.name!r} on "
                     f"{info.get('name')} at {player.sample_rate} Hz, {block}-sample blocks "
                     f"(output latency {stream.latency * 1000:.1f} ms); Ctrl+C to stop")
            while not stop.wait(0.5):
                pass
    finally:
        inport.close()
        player.close()
    return player
