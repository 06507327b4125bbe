#!/usr/bin/env bash
# Reproduces the foundation figures (teacher quality vs. steps) on a 2-core CPU, about 90 minutes:
# synthetic teachers (10 min each), text teachers (15 min each), the AR judge (6 min), then the benchmark.
# Stages whose checkpoint exists are skipped. Run from the repository root after `make install`.
set -euo pipefail
TSDFM=.venv/bin/tsdfm
PY=.venv/bin/python
fit() {  # fit NAME CONFIG [overrides...]: CONFIG trained in the run directory runs/NAME
  local name=$1 config=$2; shift 2
  if [ -f "runs/$name/checkpoints/last.ckpt" ] && [ -f "runs/$name/.done" ]; then echo "reuse runs/$name"; return; fi
  $TSDFM fit --overwrite --config "$config" --trainer.default_root_dir="runs/$name" "$@"  # not done: starts over
  touch "runs/$name/.done"
}
stage="${1:-all}"
if [ "$stage" = all ] || [ "$stage" = synthetic ]; then
  fit synthetic_tiny_mask configs/synthetic_tiny.yaml
  fit synthetic_tiny_uniform configs/synthetic_tiny.yaml --model.init_args.source=uniform
  $PY benchmarks/teacher_steps.py --dataset synthetic --config configs/synthetic_tiny.yaml \
    --checkpoint mask=runs/synthetic_tiny_mask/checkpoints/last.ckpt \
    --checkpoint uniform=runs/synthetic_tiny_uniform/checkpoints/last.ckpt \
    --judges oracle --num-samples 256 --seed 0
fi
if [ "$stage" = all ] || [ "$stage" = text ]; then
  fit text_tiny_mask configs/text_tiny.yaml
  fit text_tiny_uniform configs/text_tiny.yaml --model.init_args.source=uniform
  fit ar_judge_text configs/ar_judge_text_tiny.yaml
  $PY benchmarks/teacher_steps.py --dataset web-bible --config configs/text_tiny.yaml \
    --checkpoint mask=runs/text_tiny_mask/checkpoints/last.ckpt \
    --checkpoint uniform=runs/text_tiny_uniform/checkpoints/last.ckpt \
    --judges ar:runs/ar_judge_text/checkpoints/last.ckpt smollm2 --num-samples 64 --batch-size 64 --seed 0
fi
