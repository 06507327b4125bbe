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
# sampling and textlike need reproduce_textlike.sh teachers and students. Stages whose run directory has a .done
# marker are skipped; two stages may run at once with OMP_NUM_THREADS=1 each. Run from the repository root.
set -euo pipefail
STAGE=${1:-sampling}
source benchmarks/stages.sh
TEMPERATURES=0.5,0.6,0.7,0.8,0.9,1.0,1.1

if [[ "$STAGE" =~ ^(sampling|textlike|compass-levers|shape-from|grid|rk4|endpoint|endpoint-averaged|endpoint-substeps|endpoint-longer|endpoint-learned|latent|uniform|uniform-1024)$ ]]; then
  S=runs/textlike_student_mask/checkpoints/last.ckpt
  C=runs/textlike_compass_mask/checkpoints/last.ckpt
  QUALITY=(--dataset synthetic-textlike --config configs/textlike_teacher.yaml --judges oracle --num-samples 256
           --seed 0 --samples-dir runs/benchmarks/samples --keep-other-models --benchmark frontier --frontier)
fi

if [ "$STAGE" = sampling ]; then        # K=16 candidates per sampling step: the mechanism without distillation
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.7,0.8,0.9,1.0 \
    --model "student-blind-sampled-is16:mask:8=$S@oracle:16:importance" \
    --model "student-blind-sampled-argmin16:mask:8=$S@oracle:16:argmin" \
    --model "student-blind-sampled-boltzmann16:mask:8=$S@$C:16:boltzmann"
fi

if [ "$STAGE" = textlike ]; then        # 750 optimizer steps, as every text-like student
  fit textlike_oracle_is16_student_mask configs/textlike_student.yaml runs/textlike_student_mask \
    --trainer.max_steps=750 --trainer.max_time=null --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass=oracle --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  fit textlike_learned_boltzmann16_student_mask configs/textlike_student.yaml runs/textlike_student_mask \
    --trainer.max_steps=750 --trainer.max_time=null --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass="$C" --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=boltzmann \
    --trainer.callbacks.selection_temperature=1.0
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures $TEMPERATURES \
    --model "student-shaped-is16:mask:8=runs/textlike_oracle_is16_student_mask/checkpoints/last.ckpt" \
    --model "student-shaped-boltzmann16:mask:8=runs/textlike_learned_boltzmann16_student_mask/checkpoints/last.ckpt"
fi

if [ "$STAGE" = compass-levers ]; then  # what the learned compass lacks: the jumps it scores, or capacity
  fit textlike_compass_onpolicy_mask configs/textlike_compass.yaml --model.init_args.teacher_checkpoint=$S \
    --model.init_args.teacher_kind=student
  fit textlike_compass_large_mask configs/textlike_compass.yaml --trainer.max_steps=3000 \
    --model.init_args.backbone.hidden_size=128 --model.init_args.backbone.num_layers=4 \
    --model.init_args.backbone.num_heads=4 --model.init_args.backbone.cond_size=64
  for compass in onpolicy large; do
    fit textlike_learned_${compass}_boltzmann16_student_mask configs/textlike_student.yaml --trainer.max_steps=750 \
      --trainer.max_time=null --trainer.callbacks+=TrajectoryShaper \
      --trainer.callbacks.compass=runs/textlike_compass_${compass}_mask/checkpoints/last.ckpt \
      --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=boltzmann --trainer.callbacks.selection_temperature=1.0
  done
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 \
    --model "student-shaped-onpolicy-boltzmann16:mask:8=runs/textlike_learned_onpolicy_boltzmann16_student_mask/checkpoints/last.ckpt" \
    --model "student-shaped-large-boltzmann16:mask:8=runs/textlike_learned_large_boltzmann16_student_mask/checkpoints/last.ckpt"
fi

if [ "$STAGE" = shape-from ] && [ "${2:-sampling}" = sampling ]; then  # where along the path the gain is made
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.7,0.8,0.9,1.0 \
    --model "student-blind-sampled-is16-from0.25:mask:8=$S@oracle:16:importance:0.25" \
    --model "student-blind-sampled-is16-from0.5:mask:8=$S@oracle:16:importance:0.5" \
    --model "student-blind-sampled-is16-from0.75:mask:8=$S@oracle:16:importance:0.75"
fi
if [ "$STAGE" = shape-from ] && [ "${2:-distilled}" = distilled ]; then  # students shaped only from t = 0.5 on
  LATE=(configs/textlike_student.yaml --trainer.max_steps=750 --trainer.max_time=null --trainer.callbacks+=TrajectoryShaper
        --trainer.callbacks.shape_from=0.5)
  fit textlike_oracle_is16_from05_student_mask "${LATE[@]}" --trainer.callbacks.compass=oracle \
    --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  fit textlike_learned_argmin4_from05_student_mask "${LATE[@]}" --trainer.callbacks.compass="$C" \
    --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=argmin
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 \
    --model "student-shaped-is16-from0.5:mask:8=runs/textlike_oracle_is16_from05_student_mask/checkpoints/last.ckpt" \
    --model "student-shaped-from0.5:mask:8=runs/textlike_learned_argmin4_from05_student_mask/checkpoints/last.ckpt"
fi

if [ "$STAGE" = grid ]; then            # which jumps should reveal the most tokens (8 steps, sizes summing to 1)
  grid=${2:?grid needs a grid: front (few tokens first) or back (few tokens last)}
  case $grid in
    front) sizes=1/64,1/64,1/32,1/16,1/8,1/4,1/4,1/4 ;;
    back) sizes=1/4,1/4,1/4,1/8,1/16,1/32,1/64,1/64 ;;
    *) echo "unknown grid $grid: front or back" >&2; exit 2 ;;
  esac
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0 --step-sizes $sizes \
    --model "oracle-denoiser-$grid:mask:8=oracle" \
    --model "teacher-$grid:mask:8=runs/textlike_teacher_mask/checkpoints/last.ckpt" \
    --model "student-blind-$grid:mask:8=$S" \
    --model "student-endpoint-averaged4-shaped-is16-$grid:mask:8=runs/textlike_endpoint_averaged4_is16_student_mask/checkpoints/last.ckpt"
fi

# blind_and_oracle TRAJECTORY: text-like mask students with that target (750 steps, as every text-like student),
# blind and shaped by importance K=16 with the oracle, and their frontier rows
blind_and_oracle() {
  local target=(configs/textlike_student.yaml --model.init_args.trajectory=$1 --trainer.max_steps=750 --trainer.max_time=null)
  fit textlike_$1_student_mask "${target[@]}"
  fit textlike_$1_is16_student_mask "${target[@]}" --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass=oracle --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 \
    --model "student-$1-blind:mask:8=runs/textlike_$1_student_mask/checkpoints/last.ckpt" \
    --model "student-$1-shaped-is16:mask:8=runs/textlike_$1_is16_student_mask/checkpoints/last.ckpt"
}
if [ "$STAGE" = rk4 ]; then blind_and_oracle rk4; fi          # three shaped midpoints per target, Heun's one
if [ "$STAGE" = endpoint ]; then blind_and_oracle endpoint; fi  # the law the shaped midpoint leads to

if [ "$STAGE" = endpoint-averaged ]; then
  fit textlike_endpoint_averaged_is16_student_mask configs/textlike_student.yaml \
    --model.init_args.trajectory=endpoint_averaged --trainer.max_steps=750 --trainer.max_time=null \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle --trainer.callbacks.num_candidates=16 \
    --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 --model \
    "student-endpoint-averaged-shaped-is16:mask:8=runs/textlike_endpoint_averaged_is16_student_mask/checkpoints/last.ckpt"
fi

if [ "$STAGE" = endpoint-substeps ]; then  # Heun's one midpoint leaves half the target to the unshaped posterior
  fit textlike_endpoint_averaged4_is16_student_mask configs/textlike_student.yaml \
    --model.init_args.trajectory=endpoint_averaged --model.init_args.substeps=4 --trainer.max_steps=750 \
    --trainer.max_time=null --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle \
    --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 --model \
    "student-endpoint-averaged4-shaped-is16:mask:8=runs/textlike_endpoint_averaged4_is16_student_mask/checkpoints/last.ckpt"
fi

if [ "$STAGE" = latent ]; then  # the joint choice a factorised student cannot hold, as a mixture over latent codes
  arm=${2:?latent needs an arm: shaped (twin: endpoint-substeps) or blind (twin: the blind Heun student)}
  LATENT=(configs/textlike_student.yaml --model.init_args.latent_codes=16 --model.init_args.latent_layers=0
          --trainer.max_steps=750 --trainer.max_time=null)
  case $arm in
    shaped) fit textlike_latent16_endpoint_averaged4_is16_student_mask "${LATENT[@]}" \
              --model.init_args.trajectory=endpoint_averaged --model.init_args.substeps=4 \
              --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle \
              --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
            run=textlike_latent16_endpoint_averaged4_is16_student_mask name=student-latent16-endpoint-averaged4-shaped-is16 ;;
    blind) fit textlike_latent16_init05_student_mask "${LATENT[@]}" --model.init_args.latent_init_std=0.05
           run=textlike_latent16_init05_student_mask name=student-latent16-init0.05-blind ;;
    blind-endpoint) fit textlike_latent16_init05_endpoint_student_mask "${LATENT[@]}" --model.init_args.latent_init_std=0.05 \
                      --model.init_args.trajectory=endpoint
                    run=textlike_latent16_init05_endpoint_student_mask name=student-latent16-init0.05-endpoint-blind ;;
    *) echo "unknown arm $arm: shaped, blind or blind-endpoint" >&2; exit 2 ;;
  esac
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 \
    --model "$name:mask:8=runs/$run/checkpoints/last.ckpt"
fi

if [ "$STAGE" = endpoint-longer ]; then # resumed: a constant learning rate after warm-up, so 750 + 750 = 1,500 at once
  L=(configs/textlike_student.yaml --trainer.max_steps=1500 --trainer.max_time=null)
  fit textlike_student_mask_1500 "${L[@]}" --ckpt_path runs/textlike_student_mask/checkpoints/last.ckpt
  fit textlike_endpoint_averaged_is16_student_mask_1500 "${L[@]}" --model.init_args.trajectory=endpoint_averaged \
    --ckpt_path runs/textlike_endpoint_averaged_is16_student_mask/checkpoints/last.ckpt \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle --trainer.callbacks.num_candidates=16 \
    --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 \
    --model "student-blind-1500:mask:8=runs/textlike_student_mask_1500/checkpoints/last.ckpt" --model \
    "student-endpoint-averaged-shaped-is16-1500:mask:8=runs/textlike_endpoint_averaged_is16_student_mask_1500/checkpoints/last.ckpt"
fi

if [ "$STAGE" = endpoint-learned ]; then  # Boltzmann at tau = 1 is importance resampling when the NCE logit is log p/q
  fit textlike_endpoint_learned_boltzmann16_student_mask configs/textlike_student.yaml \
    --model.init_args.trajectory=endpoint --trainer.max_steps=750 --trainer.max_time=null \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=$C --trainer.callbacks.num_candidates=16 \
    --trainer.callbacks.policy=boltzmann --trainer.callbacks.selection_temperature=1.0
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 --model \
    "student-endpoint-shaped-boltzmann16:mask:8=runs/textlike_endpoint_learned_boltzmann16_student_mask/checkpoints/last.ckpt"
fi

if [ "$STAGE" = uniform ]; then         # matched at the data's entropy: the uniform 1024-step teacher (1,024 forwards of
  U=runs/textlike_teacher_uniform/checkpoints/last.ckpt   # 256 sequences) did not fit this CPU's budget
  W=(configs/textlike_student.yaml --model.init_args.teacher_checkpoint=$U --trainer.max_steps=750 --trainer.max_time=null)
  fit textlike_student_uniform "${W[@]}"
  fit textlike_oracle_is16_student_uniform "${W[@]}" --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass=oracle --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.6,0.7,0.8,0.9,1.0,1.1 \
    --model "teacher:uniform:8=$U" \
    --model "student-blind:uniform:8=runs/textlike_student_uniform/checkpoints/last.ckpt" \
    --model "student-shaped-is16:uniform:8=runs/textlike_oracle_is16_student_uniform/checkpoints/last.ckpt"
fi

if [ "$STAGE" = uniform-1024 ]; then    # 1,024 sequential forwards of 256 sequences: no first-hitting shortcut
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 1.0 \
    --model "teacher:uniform:1024=runs/textlike_teacher_uniform/checkpoints/last.ckpt"
fi

if [ "$STAGE" = corpus ]; then          # one CPU thread: teacher 12 min, compass 6, judge 10, students 400 steps
  fit corpus_teacher configs/demo_text_teacher.yaml --trainer.max_time=00:00:12:00
  CT=runs/corpus_teacher/checkpoints/last.ckpt
  fit corpus_compass configs/demo_text_compass.yaml --model.init_args.teacher_checkpoint=$CT --trainer.max_time=00:00:06:00
  fit corpus_ar_judge configs/ar_judge_text_tiny.yaml --trainer.max_time=00:00:10:00 --seed_everything=1
  CS=(configs/demo_text_student.yaml --model.init_args.teacher_checkpoint=$CT)
  fit corpus_student_blind "${CS[@]}"
  fit corpus_student_argmin4 "${CS[@]}" --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass=runs/corpus_compass/checkpoints/last.ckpt \
    --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=argmin
  CQ=(--dataset web-bible --config configs/demo_text_teacher.yaml --judges smollm2 ar:runs/corpus_ar_judge/checkpoints/last.ckpt
      --num-samples 256 --seed 0 --samples-dir runs/benchmarks/samples --keep-other-models --benchmark frontier)
  $PY benchmarks/quality.py "${CQ[@]}" --temperatures 1.0 --model "teacher:mask:1024:first_hitting=$CT"
  $PY benchmarks/quality.py "${CQ[@]}" --frontier --temperatures 0.8,0.9,1.0,1.1 --model "teacher:mask:8=$CT" \
    --model "student-blind:mask:8=runs/corpus_student_blind/checkpoints/last.ckpt" \
    --model "student-shaped-argmin4:mask:8=runs/corpus_student_argmin4/checkpoints/last.ckpt"
fi

T=runs/small_teacher_%s/checkpoints/last.ckpt
# small_compass SOURCE: the small language's learned compass (1,500 steps), shared by small-learned and diagnostics-small
small_compass() {
  fit small_compass_$1 configs/synthetic_compass.yaml --model.init_args.teacher_checkpoint="$(printf $T $1)" \
    --trainer.max_steps=1500 --trainer.max_time=null
}
if [ "$STAGE" = small ]; then           # today's small language, one source: teacher, students, frontier rows
  src=${2:?small needs a source: mask or uniform}
  fit small_teacher_$src configs/synthetic_tiny.yaml runs/synthetic_tiny_mask \
    --model.init_args.source=$src --trainer.max_steps=5500 --trainer.max_time=null   # fixed steps, not 10 minutes
  fit small_student_$src configs/synthetic_student.yaml runs/synthetic_student_mask \
    --model.init_args.teacher_checkpoint="$(printf $T $src)" --trainer.max_steps=1500 --trainer.max_time=null
  fit small_is16_student_$src configs/synthetic_student.yaml runs/synthetic_student_mask \
    --model.init_args.teacher_checkpoint="$(printf $T $src)" --trainer.max_steps=1500 --trainer.max_time=null \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle \
    --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  QUALITY=(--dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle --num-samples 256 --seed 0
           --samples-dir runs/benchmarks/samples --keep-other-models --benchmark frontier --frontier)
  declare -A SAMPLER=([mask]=:first_hitting [uniform]=)   # first_hitting: the ancestral law in <= L forwards
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures 0.9,1.0,1.1 \
    --model "teacher:$src:1024${SAMPLER[$src]}=$(printf $T $src)"
  $PY benchmarks/quality.py "${QUALITY[@]}" --temperatures $TEMPERATURES,1.2 \
    --model "teacher:$src:8=$(printf $T $src)" \
    --model "student-blind:$src:8=runs/small_student_$src/checkpoints/last.ckpt" \
    --model "student-shaped-is16:$src:8=runs/small_is16_student_$src/checkpoints/last.ckpt"
fi

if [ "$STAGE" = small-endpoint ]; then  # the endpoint target on today's small language, 1,500 steps as its students
  src=${2:?small-endpoint needs the source: mask (the endpoint target is refused on the uniform source)}
  target=${3:-endpoint}                 # endpoint | endpoint_averaged (the first half averaged over the K candidates)
  run=small_${target}_is16_student_$src
  fit $run configs/synthetic_student.yaml --model.init_args.trajectory=$target \
    --model.init_args.teacher_checkpoint="$(printf $T $src)" --trainer.max_steps=1500 --trainer.max_time=null \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle \
    --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=importance
  $PY benchmarks/quality.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle --num-samples 256 \
    --seed 0 --samples-dir runs/benchmarks/samples --keep-other-models --benchmark frontier --frontier \
    --temperatures $TEMPERATURES --model "student-${target//_/-}-shaped-is16:$src:8=runs/$run/checkpoints/last.ckpt"
fi

if [ "$STAGE" = small-learned ]; then   # the quality table's shaped students: a learned compass, argmin at K=4
  src=${2:?small-learned needs a source: mask or uniform}
  small_compass $src
  fit small_argmin4_student_$src configs/synthetic_student.yaml --model.init_args.teacher_checkpoint="$(printf $T $src)" \
    --trainer.max_steps=1500 --trainer.max_time=null --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass=runs/small_compass_$src/checkpoints/last.ckpt --trainer.callbacks.num_candidates=4 \
    --trainer.callbacks.policy=argmin
  $PY benchmarks/quality.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle --num-samples 256 \
    --seed 0 --samples-dir runs/benchmarks/samples --keep-other-models --benchmark frontier --frontier \
    --temperatures $TEMPERATURES,1.2,1.3 \
    --model "student-shaped:$src:8=runs/small_argmin4_student_$src/checkpoints/last.ckpt"  # argmin lowers entropy: to 1.3
fi

if [ "$STAGE" = diagnostics-small ]; then
  src=${2:?diagnostics-small needs a source: mask or uniform}
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
