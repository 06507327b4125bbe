#!/usr/bin/env bash
# Ablation of trajectory shaping on the synthetic language:  benchmarks/reproduce_ablation.sh [uniform|mask]
# K in {2, 4, 8} with argmin, and the three policies at K = 4, every student trained for the same 500
# optimizer steps from the same teacher and compass. K = 1 is blind distillation bit for bit
# (tests/test_shaper.py), so the blind run is the K = 1 row. Needs the teacher (reproduce_foundation.sh
# synthetic) and the compass (reproduce_shaping.sh synthetic). Writes benchmarks/results/shaping_ablation.*
# Each source is its trainings and arms in benchmarks/registry/ (trainings.yaml, shaping_ablation.yaml), run by
# benchmarks/run.py (--dry-run prints the commands; runs whose directory has a .done marker are skipped).
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
SRC=${WORDS[0]:-uniform}
case $SRC in
  uniform|mask) $PY benchmarks/run.py --stage "reproduce_ablation.sh $SRC" "${FLAGS[@]}" ;;
  *) echo "unknown source $SRC: uniform or mask" >&2; exit 2 ;;
esac
