#!/usr/bin/env bash
# Blind few-step students (shortcut distillation) on the synthetic language, both sources, and their
# quality (teachers at 8 steps here; their full sweep is teacher_steps.jsonl) and speed next to the teachers. Needs the
# synthetic teachers of reproduce_foundation.sh (benchmarks/run.py trains them when they are missing).
#   benchmarks/reproduce_student.sh [--dry-run] [--allow-dirty]
# The stage is its trainings and arms in benchmarks/registry/ (trainings.yaml, quality.yaml, speed.yaml), run by
# benchmarks/run.py; runs whose directory has a .done marker are skipped. Run from the repository root after
# `make install`.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
[ ${#WORDS[@]} -eq 0 ] || { echo "reproduce_student.sh takes no stage, only run.py's --options" >&2; exit 2; }
$PY benchmarks/run.py --stage "reproduce_student.sh" "${FLAGS[@]}"
