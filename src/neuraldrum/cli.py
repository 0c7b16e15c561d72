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

# modules that define ``register(subparsers)``, with the verbs each adds: a verb loads only its own module, so every
# verb starts fast and the player's verbs (no torch in the plain install) never import the trainer's
COMMAND_MODULES = {
    "neuraldrum.data.commands": ("data",),
    "neuraldrum.train.commands": ("train",),
    "neuraldrum.classifier": ("classifier",),
    "neuraldrum.release": ("bundle", "bundle-inverter", "bundle-prior"),
    "neuraldrum.sounds": ("generate", "encode", "resynth", "variations", "morph", "kit", "classes"),
    "neuraldrum.evaluate": ("eval",),
    "neuraldrum.inverters": ("compare-inverters",),
    "neuraldrum.judge": ("judge",),
    "neuraldrum.bench": ("bench",),
    "neuraldrum.export.models": ("export",),
    "neuraldrum.web.server": ("serve",),
    "neuraldrum.control.commands": ("osc", "play", "render"),
}
VERB_MODULES = {verb: module for module, verbs in COMMAND_MODULES.items() for verb in verbs}
# what `pip install 'neuraldrum[train]'` adds to the player (pyfluidsynth is imported as fluidsynth)
TRAIN_MODULES = ("torch", "scipy", "safetensors", "tqdm", "fluidsynth", "defusedxml", "onnx", "onnxscript", "librosa")
TRAIN_EXTRA = "pip install 'neuraldrum[train]'"


def needs_train(e: ImportError) -> Optional[str]:
    """The missing training package an import error is about (None: another error)."""
    name = (getattr(e, "name", None) or "").split(".")[0]
    return name if isinstance(e, ModuleNotFoundError) and name in TRAIN_MODULES else None


def train_message(verb: str, missing: str) -> str:
    return (f"`neuraldrum {verb}` needs {'PyTorch' if missing == 'torch' else missing}, which the player install "
            f"leaves out: {TRAIN_EXTRA}")


def build_parser(verb: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole command line, or only the module that defines ``verb`` when that is known. A module whose
    training packages are not installed adds its verbs as ones that say what to install."""
    parser = argparse.ArgumentParser(prog="neuraldrum", description="A real-time neural drum machine.")
    parser.add_argument("--version", action="version", version=f"neuraldrum {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [VERB_MODULES[verb]] if verb in VERB_MODULES else COMMAND_MODULES:
        try:
            importlib.import_module(name).register(sub)
        except ImportError as e:
            missing = needs_train(e)
            if missing is None:
                raise
            for v in COMMAND_MODULES[name]:
                sub.add_parser(v, help=f"(needs the [train] extra: {TRAIN_EXTRA})").set_defaults(
                    func=_needs_train(v, missing))
    return parser


def _needs_train(verb: str, missing: str):
    def run(args: argparse.Namespace) -> int:
        print(f"neuraldrum: error: {train_message(verb, missing)}", file=sys.stderr)
        return 1
    return run


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERB_MODULES:
        try:
            importlib.import_module(VERB_MODULES[argv[0]])
        except ImportError as e:
            missing = needs_train(e)
            if missing is None:
                raise
            return _needs_train(argv[0], missing)(None)
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
    except ImportError as e:  # a player install running a verb, or an option, that trains or measures
        missing = needs_train(e)
        if missing is None:
            raise
        print(f"neuraldrum: error: {train_message(args.command, missing)}", file=sys.stderr)
        return 1
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
