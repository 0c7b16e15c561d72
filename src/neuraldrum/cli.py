"""The `neuraldrum` command. Each verb is a thin wrapper over a library function; verb groups register
themselves from their own modules (``register(subparsers)``) so that this file stays a table of contents."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import Optional, Sequence

from . import __version__

# modules that define ``register(subparsers)``; each adds its verbs
COMMAND_MODULES = (
    "neuraldrum.data.commands",
    "neuraldrum.train.commands",
    "neuraldrum.classifier",
    "neuraldrum.release",
    "neuraldrum.sounds",
    "neuraldrum.evaluate",
    "neuraldrum.inverters",
    "neuraldrum.judge",
    "neuraldrum.bench",
    "neuraldrum.export.models",
    "neuraldrum.web.server",
    "neuraldrum.control.commands",
)


# the sound verbs' module imports no torch, so `--backend onnx` runs without it; loading only the module a verb
# needs also makes every verb start faster
VERB_MODULES = {verb: "neuraldrum.sounds" for verb in
                ("generate", "encode", "resynth", "variations", "morph", "kit", "classes")}


def build_parser(verb: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole command line, or only the module that defines ``verb`` when that is known."""
    parser = argparse.ArgumentParser(prog="neuraldrum", description="A real-time neural drum machine.")
    parser.add_argument("--version", action="version", version=f"neuraldrum {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [VERB_MODULES[verb]] if verb in VERB_MODULES else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.formatwarning = _warning_line  # our warnings are for the user: one line, no source line
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `neuraldrum … | head`: the reader left; not an error worth a traceback
        sys.stderr.close()
        return 141
    except ValueError as e:
        # our errors name the file, field or option; no traceback for a user's mistake
        print(f"neuraldrum: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a path that cannot be read or written (permissions, a file for a folder, a full disk …)
        print(f"neuraldrum: error: {os_error(e)}", file=sys.stderr)
        return 1


_format_warning = warnings.formatwarning


def _warning_line(message, category, filename, lineno, line=None) -> str:
    if category is UserWarning and "neuraldrum" in str(filename):
        return f"neuraldrum: warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)  # a library's: as Python shows it


def os_error(e: OSError) -> str:
    """One line naming the path and the reason, ``out/kick_000.wav: Permission denied``: the target a temp file
    stands for, not the temp file; the message itself when the error names no path (ours do, in the text)."""
    from .atomic import target_of

    name = e.filename if e.filename is not None else e.filename2
    if not isinstance(name, (str, os.PathLike)) or e.strerror is None:
        return str(e)
    return f"{target_of(name)}: {e.strerror}"


if __name__ == "__main__":
    sys.exit(main())
