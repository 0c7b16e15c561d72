"""Playing the instrument from other programs: OSC (Max/MSP, Pure Data), MIDI (live and from files).

Each protocol is a pure mapping from messages to requests or events (:mod:`.osc`, :mod:`.midi`), tested with
message objects alone, plus a thin transport that owns sockets, ports and the sound card
(:mod:`.osc_server`, :mod:`.live`). Sounds are made by the sound service (:mod:`neuraldrum.service`).
"""
