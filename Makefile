# The two commands of the README.
.PHONY: setup demo test corpus

setup:
	./scripts/setup.sh

corpus: setup
	.venv/bin/neuraldrum data build --out corpus
	.venv/bin/neuraldrum data stats corpus

# the main job
demo: corpus

test: setup
	.venv/bin/python -m pytest -q
