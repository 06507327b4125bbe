#!/usr/bin/env bash
# Blind few-step students (shortcut distillation) on the synthetic language, both sources, and their
# quality (teachers at 8 steps here; their full sweep is teacher_steps.jsonl) and speed next to the teachers. Needs the synthetic teachers of reproduce_foundation.sh.
# Stages whose checkpoint exists are skipped. Run from the repository root after `make install`.
set -euo pipefail
source benchmarks/stages.sh
T=runs/synthetic_tiny_%s/checkpoints/last.ckpt
S=runs/synthetic_student_%s/checkpoints/last.ckpt
fit synthetic_student_mask configs/synthetic_student.yaml
fit synthetic_student_uniform configs/synthetic_student.yaml \
  --model.init_args.teacher_checkpoint="$(printf $T uniform)"
$PY benchmarks/quality.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle \
  --model "teacher:mask:8=$(printf $T mask)" \
  --model "teacher:uniform:8=$(printf $T uniform)" \
  --model "student-blind:mask:1,2,4,8,16=$(printf $S mask)" \
  --model "student-blind:uniform:1,2,4,8,16=$(printf $S uniform)" \
  --num-samples 256 --seed 0
$PY benchmarks/speed.py --dataset synthetic --batch-size 32 --repeats 3 \
  --model "teacher:mask:1024=$(printf $T mask)" --model "student-blind:mask:8=$(printf $S mask)" \
  --model "teacher:uniform:1024=$(printf $T uniform)" --model "student-blind:uniform:8=$(printf $S uniform)"
