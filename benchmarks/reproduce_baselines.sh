#!/usr/bin/env bash
# Baselines as plugins: MDLM, SEDD absorb and SEDD uniform trained on the same data with the same backbone size
# as our teacher, MDLM distilled SDTT-style (blind and shaped), then one quality table (baselines.jsonl/.md/.png,
# 8..1024 steps, next to our teacher, students and shaped students) and one speed table (synthetic).
# Text: each baseline takes 32-36 min to train and each 1024-step sweep about 12 min, on one thread.
#   benchmarks/reproduce_baselines.sh synthetic   # needs reproduce_foundation.sh synthetic + reproduce_shaping.sh synthetic
#   benchmarks/reproduce_baselines.sh text        # needs reproduce_foundation.sh text + reproduce_shaping.sh text
#   benchmarks/reproduce_baselines.sh synthetic-own-compass   # MDLM, a compass on MDLM's own jumps (not our
#                                                             # teacher's), SDTT blind and shaped with it: baselines
#                                                             # rows and matched-entropy frontier rows (~1.5 h)
#   benchmarks/reproduce_baselines.sh text-own-compass        # the same on the corpus (~2.5 h)
#   benchmarks/reproduce_baselines.sh textlike                # MDLM, SDTT and SEDD absorb on the text-like language,
#                                                             # frontier rows beside our text-like students (~2 h)
#   benchmarks/reproduce_baselines.sh sdtt-gap                # our student with one of SDTT's or MDLM's choices at a
#                                                             # time: SDTT's reverse KL (text-like and small
#                                                             # language), MDLM's NELBO as the small teacher's loss
#                                                             # (~1.5 h; after reproduce_importance.sh small mask)
#   benchmarks/reproduce_baselines.sh duo                     # DUO and its DCD student (plugins/duo) on the small
#                                                             # language (~20 + 15 min: our teachers' 5,500 and
#                                                             # students' 1,500 steps) and on the text-like one
#                                                             # (~40 + 25 min: 2,750 and 750 steps), then matched-
#                                                             # entropy frontier rows on the uniform path (~2 h)
#   benchmarks/reproduce_baselines.sh corpus                  # MDLM, SEDD absorb and DUO on the embedded corpus
#                                                             # with our corpus teacher's backbone and 912 steps
#                                                             # (~12 min each), SDTT and DUO's DCD student with our
#                                                             # corpus student's 400 (~10 min each), then matched-
#                                                             # entropy frontier rows beside our corpus models, judged
#                                                             # by SmolLM2-135M and corpus_ar_judge (~1 h of
#                                                             # training; after reproduce_importance.sh corpus)
#   benchmarks/reproduce_baselines.sh uniform-gap             # our uniform pipeline against DUO on the text-like
#                                                             # language: the uniform teacher with antithetic times
#                                                             # (~30 min) and its blind student (~15 min); DCD with
#                                                             # DUO's gaps (1/512 .. 16/512) on the text-like language
#                                                             # and the corpus (~15 + 10 min); frontier rows (after
#                                                             # duo and corpus)
#   benchmarks/reproduce_baselines.sh synthetic-frontier      # SEDD absorb and uniform, and SDTT shaped by our
#                                                             # teacher's compass, retrained on the language's current
#                                                             # draw: baselines and matched-entropy rows (~1.5 h; after
#                                                             # synthetic-own-compass and reproduce_importance.sh
#                                                             # small-learned mask)
# Every training runs on one CPU thread (OMP_NUM_THREADS=1), so two stages can share a 2-core machine. Each stage is
# its trainings and arms in benchmarks/registry/ (trainings.yaml, baselines.yaml, frontier.yaml, speed.yaml), run by
# benchmarks/run.py: runs whose directory has a .done marker are skipped, --dry-run prints the commands. A run two
# stages trained differently is trained as the later stage does (synthetic-own-compass, synthetic-frontier,
# text-own-compass): the synthetic language's tables are drawn differently since the hidden-Markov refactor (data
# perplexity 4.374 at entropy 2.624, was 4.347 at 2.608), so SDTT shaped by our teacher's compass takes the small
# language's learned one (reproduce_importance.sh small-learned mask). Run from the repository root after
# `make install`.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-synthetic}
case $STAGE in
  synthetic|text|synthetic-own-compass|text-own-compass|synthetic-frontier|textlike|duo|sdtt-gap|corpus|uniform-gap)
    $PY benchmarks/run.py --stage "reproduce_baselines.sh $STAGE" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE (see the header of $0)" >&2; exit 2 ;;
esac
