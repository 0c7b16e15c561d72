# The two commands of the README: `make demo` (the main job) and `make test`.
.PHONY: setup player demo test graphs plugin corpus corpus44 corpus44inv mutate

setup:
	./scripts/setup.sh

# the player only: .venv with the package and its plain dependencies (no torch, no Debian packages, no test tools)
player:
	./scripts/setup.sh --player

# the main job: a new drum kit from the bundled default model, on the CPU, rendered in hi-fi (Griffin-Lim
# iterations after the inverter: README, "Hi-fi rendering"), by the player (the model's shipped ONNX graphs)
demo: player
	.venv/bin/neuraldrum kit -o kit --seed 0 --hifi
	@echo "the kit's WAV files (one per class) and kit.json are in $(CURDIR)/kit/"

# the real drum corpus from the Debian libraries at 22.05 kHz (what the 22.05 kHz model, the default until
# 2026-11-27, was trained on)
corpus: setup
	.venv/bin/neuraldrum data build --out corpus
	.venv/bin/neuraldrum data stats corpus

# the same libraries at 44.1 kHz, ringing sounds faded as if damped: what the default model was trained on (cpu44)
corpus44: setup
	.venv/bin/neuraldrum data build --out corpus44 --sample-rate 44100 --fade-shape decay

# what the 44.1 kHz inverter trains on: the same labelled clips (val and test unchanged) plus the DrumSynth renders
# with 2 variants each and the unlabelled pool (hand drums, other percussion), all in training only
corpus44inv: setup
	.venv/bin/neuraldrum data build --out corpus44inv --sample-rate 44100 --fade-shape decay --with-drumsynth \
		--drumsynth-variants 2 --pool

# the DAW instrument: neuraldrum.vst3 and neuraldrum.lv2 in plugin/build/cmake/bin/ (README, "In your DAW"); it
# installs its own build dependencies (Debian packages, OpenVINO's runtime from PyPI into plugin/build/ovenv)
plugin: setup
	./plugin/build.sh

test: setup plugin
	.venv/bin/ruff check src tests
	.venv/bin/python -m pytest -q
	.venv/bin/python scripts/check_player.py

# the default model's ONNX graphs, shipped beside its bundle, made again from it (after a change to the graphs:
# GRAPHS_REVISION; tests/test_player.py checks they are current)
graphs: setup
	.venv/bin/neuraldrum export --format onnx -o src/neuraldrum/assets/default-onnx

# mutation testing of the core modules, fixed samples of their mutants, under half an hour on 2 cores (timed per
# module in docs/mutation.md); CI runs `make test` only. MODULES="bundle mel" picks some, MUTATE_SAMPLE=all runs
# every mutant (README, "Mutation testing"); survivors judged equivalent: docs/mutation.md
mutate: setup
	.venv/bin/python -c "import mutmut" 2>/dev/null || .venv/bin/pip install -q "mutmut>=3.3"
	nice -n 10 ./scripts/mutate.sh
