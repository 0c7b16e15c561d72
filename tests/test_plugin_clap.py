"""The CLAP build (`make plugin`: plugin/build/cmake/bin/clap/neuraldrum/neuraldrum.clap) opens as CLAP says a host
opens one: its clap_entry initialises, and its plugin factory lists the instrument."""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("NEURALDRUM_PLUGIN_BUILD") or ROOT / "plugin" / "build" / "cmake")
CLAP = BUILD / "bin" / "clap" / "neuraldrum" / "neuraldrum.clap"
pytestmark = pytest.mark.skipif(not CLAP.is_file(), reason="the plugin is not built (make plugin)")


class Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32), ("revision", ctypes.c_uint32)]


class Entry(ctypes.Structure):
    _fields_ = [("version", Version), ("init", ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_char_p)),
                ("deinit", ctypes.CFUNCTYPE(None)), ("get_factory", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p))]


class Descriptor(ctypes.Structure):
    _fields_ = [("version", Version)] + [(n, ctypes.c_char_p) for n in (
        "id", "name", "vendor", "url", "manual_url", "support_url", "plugin_version", "description")] + [
        ("features", ctypes.POINTER(ctypes.c_char_p))]


class Factory(ctypes.Structure):
    pass


Factory._fields_ = [("get_plugin_count", ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.POINTER(Factory))),
                    ("get_plugin_descriptor", ctypes.CFUNCTYPE(ctypes.POINTER(Descriptor), ctypes.POINTER(Factory),
                                                               ctypes.c_uint32)),
                    ("create_plugin", ctypes.c_void_p)]


def test_the_clap_entry_lists_the_instrument():
    lib = ctypes.CDLL(str(CLAP))
    entry = Entry.in_dll(lib, "clap_entry")
    assert entry.version.major == 1
    assert entry.init(str(CLAP).encode())
    try:
        factory = ctypes.cast(entry.get_factory(b"clap.plugin-factory"), ctypes.POINTER(Factory))
        assert factory and factory.contents.get_plugin_count(factory) == 1
        d = factory.contents.get_plugin_descriptor(factory, 0).contents
        assert d.id == b"org.neuraldrum.instrument" and d.name == b"neuraldrum"
        features = []
        while d.features[len(features)]:
            features.append(d.features[len(features)])
        assert b"instrument" in features and b"drum-machine" in features
    finally:
        entry.deinit()
