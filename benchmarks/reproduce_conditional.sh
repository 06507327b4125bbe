#!/usr/bin/env bash
# Conditional quality on the text-like oracle language (V=256, L=128): held-out sequences with positions hidden,
# completed by the 1024-step first-hitting teacher (at T = 1: its filled-token entropy is the reference), and over the
# sampling temperatures 0.6 .. 1.0 by the teacher at 8 steps, the blind 8-step student, the blind student guided while
# it samples by the small path LM (importance over K = 16) and the 8-step student distilled with that path LM; each
# completion scored exactly by the language given what was known, and each sweep read at the reference entropy
# (matched rows, with standard errors and the ratios to the blind student and the teacher; benchmarks/conditional.py).
# Two templates: a prefix (the first 64 tokens known, 64 continued) and an infill (tokens 32..95 filled between a known
# head and tail). Takes the checkpoints of benchmarks/reproduce_textlike.sh (stages teachers, students) and of
# benchmarks/reproduce_compass.sh (stages path-lm-small, path-lm-distilled); benchmarks/run.py trains them when they
# are missing:
#   benchmarks/reproduce_conditional.sh conditional [--dry-run] [--allow-dirty]   # every arm
#   benchmarks/reproduce_conditional.sh guided [--dry-run] [--allow-dirty]        # the guided and distilled arms alone
# Each stage is its arms in benchmarks/registry/conditional.yaml, run by benchmarks/run.py. Run from the repository
# root after `make install`; writes benchmarks/results/conditional.{jsonl,md}.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-conditional}
case $STAGE in
  conditional) $PY benchmarks/run.py --stage "reproduce_conditional.sh conditional" "${FLAGS[@]}" ;;
  guided) $PY benchmarks/run.py --stage "reproduce_conditional.sh guided" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: conditional, guided" >&2; exit 2 ;;
esac
