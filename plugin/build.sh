#!/usr/bin/env bash
# `make plugin`: the VST3 and LV2 bundles in plugin/build/cmake/bin/ (neuraldrum.vst3, neuraldrum.lv2).
# Installs what the build needs when it is missing: Debian packages (apt-get), OpenVINO's runtime from PyPI into a
# build-local virtual environment (plugin/build/ovenv: its wheel carries the C++ headers, the libraries and a CMake
# config), and the model's ONNX graphs (from src/neuraldrum/assets/default-onnx when the package ships them, else
# exported from the default bundle with the project's .venv). Safe to run again: it redoes only what changed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
BUILD="$PWD/build"
mkdir -p "$BUILD"

APT_PACKAGES="dpf-source lv2-dev libsoxr-dev libsndfile1-dev nlohmann-json3-dev libx11-dev libgl-dev libxext-dev \
libxrandr-dev libxcursor-dev cmake g++ pkg-config lilv-utils liblilv-dev"
"$ROOT/scripts/apt-install.sh" $APT_PACKAGES

PY="${PYTHON:-python3}"
if [ ! -x "$BUILD/ovenv/bin/python" ]; then
    echo "== creating $BUILD/ovenv (OpenVINO's runtime, for the build only)"
    "$PY" -m venv "$BUILD/ovenv"
fi
if ! "$BUILD/ovenv/bin/python" -c "import openvino" 2>/dev/null; then
    "$BUILD/ovenv/bin/pip" install -q "openvino>=2025.1"
fi
OV_CMAKE="$("$BUILD/ovenv/bin/python" -c 'import openvino, os; print(os.path.join(os.path.dirname(openvino.__file__), "cmake"))')"

# the test hosts: pedalboard (a VST3 host from PyPI) in the project's .venv, for tests/test_plugin_*.py
if [ -x "$ROOT/.venv/bin/python" ] && ! "$ROOT/.venv/bin/python" -c "import pedalboard" 2>/dev/null; then
    "$ROOT/.venv/bin/pip" install -q "pedalboard>=0.9.26"
fi

MODEL="$ROOT/src/neuraldrum/assets/default-onnx"
if [ ! -f "$MODEL/generator.onnx" ]; then
    MODEL="$BUILD/model"
    if [ ! -f "$MODEL/generator.onnx" ]; then
        echo "== exporting the default model to ONNX (once) → $MODEL"
        "$ROOT/.venv/bin/neuraldrum" export --format onnx -o "$MODEL"
    fi
fi

cmake -S . -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release -DOpenVINO_DIR="$OV_CMAKE" -DND_MODEL_DIR="$MODEL" >/dev/null
cmake --build "$BUILD/cmake" -j"$(nproc)"
echo "== built: $BUILD/cmake/bin/neuraldrum.vst3, $BUILD/cmake/bin/neuraldrum.lv2 and $BUILD/cmake/bin/clap/neuraldrum"
echo "   install: cp -r them into ~/.vst3/, ~/.lv2/ and ~/.clap/"
