#!/usr/bin/env bash
# Conditional quality on the text-like oracle language (V=256, L=128): held-out sequences with positions hidden,
# completed by the 1024-step first-hitting teacher, the teacher at 8 steps and the blind 8-step student, each
# completion scored exactly by the language given what was known (benchmarks/conditional.py). Two templates: a
# prefix (the first 64 tokens known, 64 continued) and an infill (tokens 32..95 filled between a known head and
# tail). Takes the checkpoints of benchmarks/reproduce_textlike.sh (stages teachers, students; benchmarks/run.py
# trains them when they are missing):
#   benchmarks/reproduce_conditional.sh conditional [--dry-run] [--allow-dirty]
# The stage is its arms in benchmarks/registry/conditional.yaml, run by benchmarks/run.py. Run from the repository
# root after `make install`; writes benchmarks/results/conditional.{jsonl,md}.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-conditional}
case $STAGE in
  conditional) $PY benchmarks/run.py --stage "reproduce_conditional.sh conditional" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: conditional" >&2; exit 2 ;;
esac
