#!/usr/bin/env bash
# TS-DFM, both sources: energy compasses, shaped students (same optimizer steps as the blind students), the
# quality table (teacher 1..1024 steps, blind and shaped students 1..16 steps), sampling speed, shaping cost.
#   benchmarks/reproduce_shaping.sh synthetic   # needs reproduce_foundation.sh synthetic + reproduce_student.sh
#   benchmarks/reproduce_shaping.sh text        # needs reproduce_foundation.sh text; trains the blind students too
# Each stage is its trainings and arms in benchmarks/registry/ (trainings.yaml, quality.yaml, speed.yaml), run by
# benchmarks/run.py (runs whose directory has a .done marker are skipped; --dry-run prints the commands); the
# shaping cost, not in the registry, follows the synthetic stage. Run from the repository root after `make install`.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-synthetic}
case $STAGE in
  synthetic|text) $PY benchmarks/run.py --stage "reproduce_shaping.sh $STAGE" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: synthetic or text" >&2; exit 2 ;;
esac
SHAPING_COST=($PY benchmarks/shaping_cost.py --dataset synthetic --config configs/synthetic_student.yaml
              --teacher runs/synthetic_tiny_mask/checkpoints/last.ckpt
              --compass runs/synthetic_compass_mask/checkpoints/last.ckpt --num_candidates 1 2 4 8)
if [ "$STAGE" = synthetic ]; then  # distillation throughput, blind and K = 1..8 (argmin)
  if [[ " ${FLAGS[*]} " == *" --dry-run "* ]]; then echo "# the shaping cost"; echo "${SHAPING_COST[*]}"; else "${SHAPING_COST[@]}"; fi
fi
