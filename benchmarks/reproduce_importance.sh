#!/usr/bin/env bash
# Importance-resampled shaping against argmin and temperature, at matched entropy (benchmarks/results/frontier.*).
#   benchmarks/reproduce_importance.sh sampling         # the blind text-like student guided while it samples
#   benchmarks/reproduce_importance.sh textlike         # text-like students shaped by importance resampling
#   benchmarks/reproduce_importance.sh endpoint         # text-like mask students with the endpoint target, blind and
#                                                       #   importance-shaped (a shaped midpoint shapes both halves)
#   benchmarks/reproduce_importance.sh endpoint-averaged  # the endpoint target's first half averaged over the K=16
#                                                       #   importance-weighted candidates (oracle), 750 steps
#   benchmarks/reproduce_importance.sh endpoint-longer  # the blind Heun and averaged-endpoint importance K=16
#                                                       #   students resumed to 1,500 steps (after endpoint-averaged)
#   benchmarks/reproduce_importance.sh endpoint-substeps  # the averaged endpoint target over 4 sub-steps: 3 midpoints
#                                                       #   shaped by importance K=16 (oracle), the last h/4 not, 750 steps
#   benchmarks/reproduce_importance.sh endpoint-learned # the endpoint target shaped by the learned compass, Boltzmann
#                                                       #   at tau = 1, K = 16 (the oracle's share at these settings)
#   benchmarks/reproduce_importance.sh compass-levers   # two learned compasses against the textlike one: negatives from
#                                                       #   the blind student's own jumps (on-policy), and 8x the
#                                                       #   capacity for 2x the steps; each shapes a Boltzmann tau=1
#                                                       #   K=16 student (750 steps); frontier rows (~2 h one thread)
#   benchmarks/reproduce_importance.sh shape-from [sampling|distilled]  # shaping only the jumps from t >= shape_from
#                                                       #   on (t = 0 the source): the blind student guided while it
#                                                       #   samples from 0.25, 0.5, 0.75 (oracle importance K=16), and
#                                                       #   students shaped from 0.5 (oracle importance K=16, learned
#                                                       #   argmin K=4; 750 steps); both parts unless one is named
#   benchmarks/reproduce_importance.sh grid front       # 8 steps on a grid that reveals few tokens first (step sizes
#   benchmarks/reproduce_importance.sh grid back        #   1/64,1/64,1/32,1/16,1/8,1/4,1/4,1/4) or last (reversed):
#                                                       #   exact posterior, teacher, blind and best shaped student
#   benchmarks/reproduce_importance.sh rk4              # RK4's three midpoints, blind and shaped by importance K=16
#                                                       #   (oracle), against Heun's one (750 steps each)
#   benchmarks/reproduce_importance.sh latent shaped    # a student whose posterior is a mixture over 16 latent codes
#   benchmarks/reproduce_importance.sh latent blind     #   (factorised given the code; the code modulates the output
#   benchmarks/reproduce_importance.sh latent blind-endpoint  # layer; blind arms: codes started 0.05 apart), with
#                                                       #   the targets of its factorised twins: the averaged endpoint
#                                                       #   over 4 sub-steps shaped by importance K=16 (oracle), blind
#                                                       #   Heun, or the blind endpoint (one midpoint); 750 steps
#   benchmarks/reproduce_importance.sh uniform          # text-like uniform-source students, blind and importance-shaped
#   benchmarks/reproduce_importance.sh uniform-1024     # the uniform text-like teacher at 1,024 steps, T = 1 (the
#                                                       #   reference entropy; about 45 minutes of one CPU thread)
#   benchmarks/reproduce_importance.sh corpus           # embedded corpus at demo scale: blind and argmin K=4 students,
#                                                       #   frontier with both judges (SmolLM2, a seed-1 causal LM)
#   benchmarks/reproduce_importance.sh small mask       # today's small language, one source: teacher, blind and
#   benchmarks/reproduce_importance.sh small uniform    #   importance-shaped students, frontier rows
#   benchmarks/reproduce_importance.sh small-endpoint mask     # the small language's endpoint-target student shaped
#                                                       #   by importance K=16 (after `small mask`; mask source only)
#   benchmarks/reproduce_importance.sh small-endpoint mask endpoint_averaged   # the same, the target's first half
#                                                       #   averaged over the K candidates at their importance weights
#   benchmarks/reproduce_importance.sh small-learned mask      # the small language's learned compass (1,500 steps)
#   benchmarks/reproduce_importance.sh small-learned uniform   #   and the quality table's argmin K=4 student shaped by
#                                                       #   it (1,500 steps): frontier rows (after `small SOURCE`)
#   benchmarks/reproduce_importance.sh diagnostics-small mask   # student quality against training steps to 10k on
#   benchmarks/reproduce_importance.sh diagnostics-small uniform #   the small language (after `small SOURCE`): blind
#                                                       #   and oracle importance K=16 resumed from 1,500 steps, a learned
#                                                       #   compass's Boltzmann tau=1 K=16 from scratch; every 1,000 steps
#                                                       #   kept (benchmarks/results/diagnostics.*; ~3 h a source)
# sampling and textlike need reproduce_textlike.sh teachers and students (run.py trains them when they are missing).
# Every stage but diagnostics-small is its trainings and arms in benchmarks/registry/ (trainings.yaml, frontier.yaml),
# run by benchmarks/run.py: runs whose directory has a .done marker are skipped, --dry-run prints the commands,
# --allow-dirty records rows from a tree with uncommitted changes. Two stages may run at once with OMP_NUM_THREADS=1
# each. Run from the repository root.
set -euo pipefail
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-sampling}
ARGUMENT=${WORDS[1]:-}
stages() {  # stages ARGS...: benchmarks/run.py on the registry's stages "reproduce_importance.sh ARGS", one an argument
  local selected=() args
  for args in "$@"; do selected+=(--stage "reproduce_importance.sh $args"); done
  $PY benchmarks/run.py "${selected[@]}" "${FLAGS[@]}"
}

case $STAGE in
  sampling|textlike|compass-levers|rk4|endpoint|endpoint-averaged|endpoint-substeps|endpoint-longer|endpoint-learned|\
  uniform|uniform-1024|corpus) stages "$STAGE" ;;
  shape-from) if [ -n "$ARGUMENT" ]; then stages "shape-from $ARGUMENT"; else stages "shape-from sampling" "shape-from distilled"; fi ;;
  grid) stages "grid ${ARGUMENT:?grid needs a grid: front (few tokens first) or back (few tokens last)}" ;;
  latent) stages "latent ${ARGUMENT:?latent needs an arm: shaped, blind or blind-endpoint}" ;;
  small|small-learned) stages "$STAGE ${ARGUMENT:?$STAGE needs a source: mask or uniform}" ;;
  small-endpoint) stages "small-endpoint ${ARGUMENT:?small-endpoint needs the source: mask} ${WORDS[2]:-endpoint}" ;;
  diagnostics-small) ;;
  *) echo "unknown stage $STAGE (see the header of $0)" >&2; exit 2 ;;
esac

T=runs/small_teacher_%s/checkpoints/last.ckpt
# small_compass SOURCE: the small language's learned compass (1,500 steps), as trainings.yaml's small_compass_SOURCE
small_compass() {
  fit small_compass_$1 configs/synthetic_compass.yaml --model.init_args.teacher_checkpoint="$(printf $T $1)" \
    --trainer.max_steps=1500 --trainer.max_time=null
}
if [ "$STAGE" = diagnostics-small ]; then
  src=${ARGUMENT:?diagnostics-small needs a source: mask or uniform}
  arm() {  # arm NAME [START] [overrides...]: a student to 10k steps from START's last checkpoint (none: scratch),
    local name=$1 start=$2; shift 2  # every 1,000th checkpoint kept
    fit $name configs/synthetic_student.yaml --model.init_args.teacher_checkpoint="$(printf $T $src)" \
      --trainer.max_steps=10000 --trainer.max_time=null --trainer.callbacks+=ModelCheckpoint \
      --trainer.callbacks.every_n_train_steps=1000 --trainer.callbacks.save_top_k=-1 \
      --trainer.callbacks.dirpath=runs/$name/diagnostics "$@" ${start:+--ckpt_path=runs/$start/checkpoints/last.ckpt}
  }
  small_compass $src
  SHAPE=(--trainer.callbacks+=TrajectoryShaper --trainer.callbacks.num_candidates=16)
  arm small_student_${src}_10k small_student_$src
  arm small_is16_student_${src}_10k small_is16_student_$src "${SHAPE[@]}" --trainer.callbacks.compass=oracle \
    --trainer.callbacks.policy=importance
  arm small_learned16_student_${src}_10k "" "${SHAPE[@]}" --trainer.callbacks.policy=boltzmann \
    --trainer.callbacks.compass=runs/small_compass_$src/checkpoints/last.ckpt --trainer.callbacks.selection_temperature=1.0
  $PY benchmarks/diagnostics.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle \
    --num-samples 256 --seed 0 --steps 1,2,4,8,16 \
    --run "student-blind:$src=runs/small_student_$src" --run "student-blind:$src=runs/small_student_${src}_10k" \
    --run "student-shaped-is16:$src=runs/small_is16_student_$src" \
    --run "student-shaped-is16:$src=runs/small_is16_student_${src}_10k" \
    --run "student-shaped-learned16:$src=runs/small_learned16_student_${src}_10k"
fi
