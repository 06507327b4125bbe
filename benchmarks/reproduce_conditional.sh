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
# are missing. The corpus stage does the same on the embedded World English Bible with make demo's models (the
# 1024-step teacher, the 8-step teacher, the blind student and the blind student guided by the demo's path LM,
# importance over K = 16) and the demo student distilled with that path LM (benchmarks/reproduce_compass.sh
# corpus-path-lm-distilled; trained when missing): 128 held-out blocks of the corpus's validation split with the first
# 32 of their 64 tokens known, each continuation judged by SmolLM2-135M given its prompt, with MAUVE against the
# held-out continuations and MAUVE's noise ceiling (the held-out continuations against those of as many other
# held-out blocks).
# The prompted stage completes the text-like templates with the 8-step student distilled with half of each batch's
# sequences as conditional samples (--model.init_args.prompt_masking=0.5), sampled as the blind student:
#   benchmarks/reproduce_conditional.sh conditional [--dry-run] [--allow-dirty]   # every text-like arm but the prompted ones
#   benchmarks/reproduce_conditional.sh guided [--dry-run] [--allow-dirty]        # the guided and distilled arms alone
#   benchmarks/reproduce_conditional.sh corpus [--dry-run] [--allow-dirty]        # the corpus arms
#   benchmarks/reproduce_conditional.sh prompted [--dry-run] [--allow-dirty]      # the prompt-masked student's arms
# Each stage is its arms in benchmarks/registry/conditional.yaml, run by benchmarks/run.py. Run from the repository
# root after `make install`; writes benchmarks/results/conditional.{jsonl,md}.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-conditional}
case $STAGE in
  conditional) $PY benchmarks/run.py --stage "reproduce_conditional.sh conditional" "${FLAGS[@]}" ;;
  guided) $PY benchmarks/run.py --stage "reproduce_conditional.sh guided" "${FLAGS[@]}" ;;
  corpus) $PY benchmarks/run.py --stage "reproduce_conditional.sh corpus" "${FLAGS[@]}" ;;
  prompted) $PY benchmarks/run.py --stage "reproduce_conditional.sh prompted" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: conditional, guided, corpus, prompted" >&2; exit 2 ;;
esac
