#!/usr/bin/env bash
# The text-like oracle language (V=256, L=128, topic over syntax): teachers of both sources; blind students and
# students shaped by the oracle compass (K=4, K=16) or by a learned compass; the quality table (teachers 1..1024
# steps, the exact-posterior sampler, students 1..16 steps) and the matched-entropy frontier. Stages run one at a
# time, or in two lanes with OMP_NUM_THREADS=1:
#   benchmarks/reproduce_textlike.sh teachers | students | quality | frontier [--dry-run] [--allow-dirty]
# Each stage is its trainings and arms in benchmarks/registry/ (trainings.yaml, quality.yaml, frontier.yaml), run by
# benchmarks/run.py: runs whose directory has a .done marker are skipped, --dry-run prints the commands. Run from the
# repository root after `make install`.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-teachers}
case $STAGE in
  teachers|students|quality|frontier) $PY benchmarks/run.py --stage "reproduce_textlike.sh $STAGE" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: teachers, students, quality or frontier" >&2; exit 2 ;;
esac
