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
#                                                 #   instrument at M = 1, 4, 16 (128 states) and guided 8-step rows
#                                                 #   at M = 4 (small causal LM at K = 4, sequence oracle at K = 16)
#   benchmarks/reproduce_compass.sh corpus        # the embedded corpus (SmolLM2-135M judge, 256 samples): the demo's
#                                                 #   student guided by the demo's causal LM against itself blind and the
#                                                 #   teacher at 8 and 1024 steps (needs `make demo` first, ~15 min)
# Needs the text-like teacher, NCE compass and blind student (benchmarks/reproduce_textlike.sh, or the cached copies
# placed under runs/ as their README says). Run from the repository root; a stage whose run directory has a .done
# marker is skipped.
set -euo pipefail
STAGE=${1:?usage: benchmarks/reproduce_compass.sh causal-lm|causal-lm-small|instrument|cost-quality|distilled|fillers|corpus}
source benchmarks/stages.sh
T=runs/textlike_teacher_mask/checkpoints/last.ckpt
S=runs/textlike_student_mask/checkpoints/last.ckpt
C=runs/textlike_compass_mask/checkpoints/last.ckpt
LM=runs/textlike_causal_lm/checkpoints/last.ckpt
QUALITY=(--dataset synthetic-textlike --config configs/textlike_teacher.yaml --judges oracle --num-samples 256 --seed 0
         --samples-dir runs/benchmarks/samples --keep-other-models --benchmark cost_quality --frontier
         --temperatures 0.7,0.8,0.9,1.0,1.1)
GUIDED=(--temperatures 0.5,0.6,0.7,0.8,1.0)  # guided and shaped samples sit colder at equal T: the sweep reaches 0.5

if [ "$STAGE" = causal-lm ]; then
  fit textlike_causal_lm configs/textlike_causal_lm.yaml
fi

if [ "$STAGE" = causal-lm-small ]; then
  fit textlike_causal_lm_small configs/textlike_causal_lm.yaml --model.init_args.backbone.hidden_size=64 \
    --model.init_args.backbone.num_layers=2 --model.init_args.backbone.num_heads=2
  SMALL=runs/textlike_causal_lm_small/checkpoints/last.ckpt
  $PY benchmarks/quality.py "${QUALITY[@]}" "${GUIDED[@]}" \
    --model "student-guided-smalllm-is16:mask:8=$S@ar:$SMALL:16:importance" \
    --model "student-guided-smalllm-is4:mask:8=$S@ar:$SMALL:4:importance"
  $PY benchmarks/quality.py "${QUALITY[@]}" "${GUIDED[@]}" --model "student-guided-smalllm-argmin16:mask:8=$S@ar:$SMALL:16:argmin"
  $PY benchmarks/cost_quality.py
fi

if [ "$STAGE" = instrument ]; then
  $PY benchmarks/compasses.py --teacher $T --num-states 256 --k 16 --steps 8 --seed 0 \
    --compass nce=$C --compass causal-lm=ar:$LM --compass causal-lm-small=ar:runs/textlike_causal_lm_small/checkpoints/last.ckpt \
    --compass oracle --compass oracle-sequence --compass random
fi

if [ "$STAGE" = cost-quality ]; then    # the reference (the teacher's T = 1 entropy) needs its T = 1 point only
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 1.0 --model "teacher:mask:1024:first_hitting=$T"
  # one invocation per costly arm, so an interrupted stage keeps the rows of the arms it finished
  $PY benchmarks/quality.py "${QUALITY[@]}" "${GUIDED[@]}" \
    --model "student-blind:mask:1,2,4,8,16=$S" \
    --model "teacher:mask:8,16,64=$T" \
    --model "student-guided-nce-boltzmann16:mask:8=$S@$C:16:boltzmann" \
    --model "student-guided-seqoracle-is16:mask:8=$S@oracle-sequence:16:importance" \
    --model "student-guided-oracle-is16:mask:8=$S@oracle:16:importance"
  $PY benchmarks/quality.py "${QUALITY[@]}" "${GUIDED[@]}" --model "student-guided-lm-is4:mask:8=$S@ar:$LM:4:importance"
  $PY benchmarks/quality.py "${QUALITY[@]}" "${GUIDED[@]}" --model "student-guided-lm-is16:mask:8=$S@ar:$LM:16:importance"
  $PY benchmarks/cost_quality.py
fi

if [ "$STAGE" = distilled ]; then
  fit textlike_lm_is16_student_mask configs/textlike_student.yaml --trainer.max_steps=750 --trainer.max_time=null \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=ar:$LM --trainer.callbacks.num_candidates=16 \
    --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py "${QUALITY[@]}" "${GUIDED[@]}" \
    --model "student-shaped-lm-is16:mask:8=runs/textlike_lm_is16_student_mask/checkpoints/last.ckpt"
  $PY benchmarks/cost_quality.py
fi

if [ "$STAGE" = fillers ]; then
  SMALL=runs/textlike_causal_lm_small/checkpoints/last.ckpt
  $PY benchmarks/compasses.py --teacher $T --num-states 128 --k 16 --steps 8 --seed 0 --filler-draws 1,4,16 \
    --compass causal-lm-small=ar:$SMALL --compass oracle-sequence
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.5,0.6,0.7,0.8 \
    --model "student-guided-smalllm-is4-m4:mask:8=$S@ar:$SMALL:4:importance:filler_draws=4"
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8 \
    --model "student-guided-seqoracle-is16-m4:mask:8=$S@oracle-sequence:16:importance:filler_draws=4"
  $PY benchmarks/cost_quality.py
fi

if [ "$STAGE" = corpus ]; then  # the demo's checkpoints; the causal LM is neither judge (SmolLM2-135M judges)
  D=runs/demo
  CORPUS=(--dataset web-bible --config configs/demo_text_teacher.yaml --judges smollm2 --num-samples 256 --seed 0
          --samples-dir runs/benchmarks/samples --keep-other-models --benchmark cost_quality --frontier)
  $PY benchmarks/quality.py "${CORPUS[@]}" --temperatures 1.0 --model "teacher:mask:1024:first_hitting=$D/teacher.ckpt"
  $PY benchmarks/quality.py "${CORPUS[@]}" --temperatures 0.9,1.0,1.1 --model "teacher:mask:8=$D/teacher.ckpt" \
    --model "student-blind:mask:8=$D/student_blind.ckpt" \
    --model "student-guided-lm-is16:mask:8=$D/student_blind.ckpt@ar:$D/causal_lm.ckpt:16:importance:filler_draws=1" \
    --model "student-guided-lm-is4:mask:8=$D/student_blind.ckpt@ar:$D/causal_lm.ckpt:4:importance:filler_draws=1"
  $PY benchmarks/cost_quality.py
fi
