#!/usr/bin/env bash
# A learned energy that gets what the oracle gets: a causal LM over the denoiser's whole proposals, on the text-like
# language (mask source), measured against the NCE compass and both oracles.
#   benchmarks/reproduce_compass.sh causal-lm     # the causal LM energy (configs/textlike_causal_lm.yaml, ~12 min)
#   benchmarks/reproduce_compass.sh causal-lm-small  # a causal LM of a fifth of its parameters (0.25 M: 64 wide, 2
#                                                 #   blocks), for the cost target; guided 8-step rows at K = 4, 16
#                                                 #   (importance), and K = 16 argmin (the mode of its joint law)
#   benchmarks/reproduce_compass.sh instrument    # how each energy ranks 16 teacher candidates at each jump of the
#                                                 #   8-step grid (benchmarks/results/compasses.*; ~10 min)
#   benchmarks/reproduce_compass.sh cost-quality  # the teacher at 8..64 ancestral and 1024 first-hitting steps,
#                                                 #   the blind student at 1..16, and the same student guided at 8
#                                                 #   steps by each energy (K = 4, 16); matched perplexity against seconds per
#                                                 #   sequence (benchmarks/results/cost_quality.*; ~1 h of one thread)
#   benchmarks/reproduce_compass.sh distilled     # a student distilled with the causal LM energy (importance, K = 16,
#                                                 #   750 steps, the blind student's config), then its frontier rows
#                                                 #   beside the blind twin's in cost_quality
#   benchmarks/reproduce_compass.sh fillers       # the marginal over M filler draws of the open positions: the
#                                                 #   instrument at M = 1, 4, 16 (64 states) and guided 8-step rows
#                                                 #   at M = 4 (small causal LM at K = 4, sequence oracle at K = 16)
#   benchmarks/reproduce_compass.sh path-lm       # the path LM, a causal LM of the noised states whose energy
#                                                 #   -log p_t(x_t) estimates the state oracle's (configs/
#                                                 #   textlike_path_lm.yaml, ~15 min): the instrument, and guided
#                                                 #   8-step rows at K = 4, 16 (importance)
#   benchmarks/reproduce_compass.sh path-lm-small # the path LM of a fifth of its parameters (0.25 M: 64 wide, 2
#                                                 #   blocks), for the cost target: the instrument, guided K = 4, 16
#   benchmarks/reproduce_compass.sh path-lm-distilled  # students distilled with the small path LM (importance, K = 16, 750
#                                                 #   steps; the Heun target and the averaged endpoint over 4
#                                                 #   sub-steps), then their frontier rows beside the blind student's
#   benchmarks/reproduce_compass.sh path-lm-early  # the averaged endpoint target over 4 sub-steps shaped only on the
#                                                 #   jumps from t < 0.25 (shape_until), by the 1.3 M path LM and by
#                                                 #   the state oracle (750 steps each), at 4 and 8 steps
#   benchmarks/reproduce_compass.sh distillation-jumps  # the instrument at the jumps that shape an 8-step student's
#                                                 #   targets (1/16: Heun's half step; 1/32: the averaged endpoint's
#                                                 #   sub-step), with the importance share (is_share) of every energy
#                                                 #   that shaped one (after path-lm and path-lm-small; ~10 min)
#   benchmarks/reproduce_compass.sh corpus        # the embedded corpus (SmolLM2-135M judge, 256 samples): the demo's
#                                                 #   student guided by the demo's causal LM against itself blind and the
#                                                 #   teacher at 8 and 1024 steps (~15 min once make demo's runs exist)
#   benchmarks/reproduce_compass.sh corpus-path-lm  # the same student guided by a path LM of the corpus
#                                                 #   (configs/demo_text_path_lm.yaml, 2.25 min) at K = 16 and 4
#   benchmarks/reproduce_compass.sh corpus-path-lm-distilled  # the demo's student distilled with that path LM
#                                                 #   (importance, K = 16, its 400 steps) beside its blind twin
# The text-like stages need the text-like teacher, NCE compass and blind student (benchmarks/reproduce_textlike.sh, or
# the cached copies placed under runs/ as their README says); the corpus stages read make demo's runs in their own
# directories (runs/demo/teacher, student_blind, causal_lm, path_lm, student_pathlm_is16: demo/NAME in
# trainings.yaml). Every stage is its trainings and arms in benchmarks/registry/ (trainings.yaml, cost_quality.yaml,
# compasses.yaml), run by benchmarks/run.py: it trains what is missing (a run whose directory has a .done marker is
# skipped; one with a last.ckpt but no marker is continued from it: make demo writes no marker, so touch
# runs/demo/NAME/.done for each of its finished runs), measures each arm and regenerates the pages;
# --dry-run prints the commands, --allow-dirty records rows from a tree with uncommitted changes. Run from the
# repository root.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:?usage: benchmarks/reproduce_compass.sh causal-lm|causal-lm-small|instrument|cost-quality|distilled|fillers|path-lm|path-lm-small|path-lm-distilled|path-lm-early|distillation-jumps|corpus|corpus-path-lm|corpus-path-lm-distilled}
case $STAGE in
  causal-lm|causal-lm-small|instrument|cost-quality|distilled|fillers|path-lm|path-lm-small|path-lm-distilled|\
  path-lm-early|distillation-jumps|corpus|corpus-path-lm|corpus-path-lm-distilled)
    $PY benchmarks/run.py --stage "reproduce_compass.sh $STAGE" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: causal-lm, causal-lm-small, instrument, cost-quality, distilled, fillers, path-lm, path-lm-small, path-lm-distilled, path-lm-early, distillation-jumps, corpus, corpus-path-lm or corpus-path-lm-distilled" >&2
     exit 2 ;;
esac
