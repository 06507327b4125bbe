#!/usr/bin/env bash
# Conditional quality on the text-like oracle language (V=256, L=128): held-out sequences with positions hidden,
# completed by the 1024-step first-hitting teacher, the teacher at 8 steps and the blind 8-step student, each
# completion scored exactly by the language given what was known (benchmarks/conditional.py). Two templates: a
# prefix (the first 64 tokens known, 64 continued) and an infill (tokens 32..95 filled between a known head and
# tail). Takes the checkpoints of benchmarks/reproduce_textlike.sh (stages teachers, students):
#   benchmarks/reproduce_conditional.sh conditional
# Run from the repository root after `make install`; writes benchmarks/results/conditional.{jsonl,md}.
set -euo pipefail
STAGE=${1:-conditional}
source benchmarks/stages.sh
T=runs/textlike_teacher_mask/checkpoints/last.ckpt
S=runs/textlike_student_mask/checkpoints/last.ckpt

if [ "$STAGE" = conditional ]; then    # 256 conditions a template, one completion each
  for checkpoint in "$T" "$S"; do
    [ -f "$checkpoint" ] || { echo "missing $checkpoint: run benchmarks/reproduce_textlike.sh teachers students" >&2; exit 1; }
  done
  $PY benchmarks/conditional.py --dataset synthetic-textlike --config configs/textlike_teacher.yaml \
    --template prefix:64 --template infill:32:96 --num-conditions 256 --seed 0 --batch-size 64 \
    --model "teacher:1024:first_hitting=$T" \
    --model "teacher:8=$T" \
    --model "student-blind:8=$S"
fi
