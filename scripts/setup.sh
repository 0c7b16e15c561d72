#!/usr/bin/env bash
# Set up neuraldrum on a fresh Debian machine: the drum libraries (apt-get), a virtual environment in .venv,
# the CPU build of PyTorch and the package with its test extras. Safe to run again: it skips what is there.
#   --player: only the player (what `make demo` needs): .venv with the package and its plain dependencies
#   (numpy, soundfile, soxr, onnxruntime, the front ends' libraries), no Debian packages, no torch, no test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if [ "${1:-}" = "--player" ]; then
    [ -x .venv/bin/python ] || { echo "== creating .venv"; "$PY" -m venv .venv; }
    if ! .venv/bin/python -c "import neuraldrum, numpy, soundfile, soxr, onnxruntime, fastapi, uvicorn, pythonosc, mido" \
            2>/dev/null; then
        echo "== installing the player (no torch)"
        .venv/bin/pip install -q -e .
    fi
    exit 0
fi

# chromium: the browser the end-to-end test of `neuraldrum serve` drives (through Playwright's Python package,
# which is told to use it: Playwright never downloads a browser here); puredata-core: Pure Data without its GUI,
# which the test of the shipped Pd patch runs headless
APT_PACKAGES="hydrogen-drumkits hydrogen-drumkits-effects sonic-pi-samples lmms-common fluid-soundfont-gm \
avldrums.lv2-soundfont libfluidsynth3 libsndfile1 chromium puredata-core"
./scripts/apt-install.sh $APT_PACKAGES

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PY" -m venv .venv
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if ! .venv/bin/python -c "import neuraldrum, torch, defusedxml, pytest, librosa, fastapi, uvicorn, websockets, httpx, hypothesis, playwright, pythonosc, mido, onnx, onnxscript, onnxruntime" 2>/dev/null \
        || [ ! -x .venv/bin/ruff ]; then
    echo "== installing Python packages"
    .venv/bin/pip install -q --upgrade pip
    # the CPU build of torch; an unpinned torch would pull a multi-GB CUDA build
    .venv/bin/pip install -q "torch==2.13.0"
    .venv/bin/pip install -q -e ".[dev]"
fi

# Hydrogen's own drumkit.xsd, which the tests validate exported kits against: taken from Debian's hydrogen-data
# package without installing it (its kits are kept out of the corpus), into the git-ignored .hydrogen-xsd/
if [ ! -s .hydrogen-xsd/drumkit.xsd ]; then
    echo "== fetching Hydrogen's drumkit.xsd (apt-get download hydrogen-data; not installed)"
    tmp="$(mktemp -d)"
    if (cd "$tmp" && apt-get download -q hydrogen-data >/dev/null 2>&1) \
            && dpkg-deb -x "$tmp"/hydrogen-data_*.deb "$tmp/x" \
            && [ -s "$tmp/x/usr/share/hydrogen/data/xsd/drumkit.xsd" ]; then
        mkdir -p .hydrogen-xsd
        cp "$tmp/x/usr/share/hydrogen/data/xsd/drumkit.xsd" .hydrogen-xsd/drumkit.xsd
    else
        echo "warning: could not fetch hydrogen-data's drumkit.xsd; the Hydrogen schema test will fail" >&2
    fi
    rm -rf "$tmp"
fi
.venv/bin/python -c "import lxml" 2>/dev/null || .venv/bin/pip install -q "lxml>=5"
