# The two commands of the README: `make demo` (the main job) and `make test`.
.PHONY: setup demo test corpus

setup:
	./scripts/setup.sh

# the main job: a new drum kit from the bundled default model, on the CPU
demo: setup
	.venv/bin/neuraldrum kit -o kit --seed 0
	@echo "the kit's WAV files (one per class) and kit.json are in $(CURDIR)/kit/"

# the real drum corpus from the Debian libraries (what the default model was trained on)
corpus: setup
	.venv/bin/neuraldrum data build --out corpus
	.venv/bin/neuraldrum data stats corpus

test: setup
	.venv/bin/python -m pytest -q
