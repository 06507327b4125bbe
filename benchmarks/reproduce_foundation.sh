#!/usr/bin/env bash
# Reproduces the foundation figures (teacher quality vs. steps) on a 2-core CPU, about 90 minutes:
# synthetic teachers (10 min each), text teachers (15 min each), the AR judge (6 min), then the benchmark.
#   benchmarks/reproduce_foundation.sh [all|synthetic|text] [--dry-run] [--allow-dirty]
# Each stage is its trainings and arms in benchmarks/registry/ (trainings.yaml, teacher_steps.yaml), run by
# benchmarks/run.py: runs whose directory has a .done marker are skipped, an interrupted one continues from its
# last.ckpt, --dry-run prints the commands. Run from the repository root after `make install`.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-all}
case $STAGE in
  all) $PY benchmarks/run.py --stage "reproduce_foundation.sh synthetic" --stage "reproduce_foundation.sh text" "${FLAGS[@]}" ;;
  synthetic|text) $PY benchmarks/run.py --stage "reproduce_foundation.sh $STAGE" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: all, synthetic or text" >&2; exit 2 ;;
esac
