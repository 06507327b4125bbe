#!/usr/bin/env bash
# FLM and its flow-map distillation FMLM (plugin tsdfm-flm) next to every other model:
#   benchmarks/reproduce_flm.sh synthetic   # FLM 5,500 steps (as our teachers), FMLM 2,500 from it; oracle judge, 256
#                                           # samples: baselines rows (FLM at 8..1024 Euler steps, FMLM at 1, 2, 4, 8
#                                           # steps with g = 0.8 and g = 0), frontier rows (temperature sweeps, matched
#                                           # entropy) and speed rows; about 1.5 h on one thread
#   benchmarks/reproduce_flm.sh text        # embedded corpus: FLM 4,250 steps (as our text teachers), FMLM 1,500;
#                                           # SmolLM2-135M and the corpus causal-LM judge, 64 samples; about 1.5 h
# Sizes shrink from the environment for a smoke run (FLM_STEPS, FMLM_STEPS, SAMPLES, REPEATS, FLM_GRID).
# Run from the repository root after `make install`.
set -euo pipefail
STAGE=${1:-synthetic}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source benchmarks/stages.sh
TRAIN=(--trainer.max_time=null --trainer.enable_progress_bar=false)
FLM_GRID=${FLM_GRID:-8,16,64,256,1024}
R=runs/%s/checkpoints/last.ckpt

if [ "$STAGE" = synthetic ]; then
  SAMPLES=${SAMPLES:-256}; REPEATS=${REPEATS:-3}
  fit synthetic_flm configs/synthetic_flm.yaml --trainer.max_steps=${FLM_STEPS:-5500} "${TRAIN[@]}"
  F=$(printf $R synthetic_flm)
  fit synthetic_fmlm configs/synthetic_fmlm.yaml --trainer.max_steps=${FMLM_STEPS:-2500} "${TRAIN[@]}" \
    --model.init_args.teacher_checkpoint=$F
  M=$(printf $R synthetic_fmlm)
  Q=(--dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle --num-samples $SAMPLES --seed 0
     --samples-dir runs/benchmarks/samples --keep-other-models)
  $PY benchmarks/quality.py --benchmark baselines "${Q[@]}" \
    --model "flm:gaussian:$FLM_GRID=$F" \
    --model "fmlm:gaussian:1,2,4,8=$M" \
    --model "fmlm-g0:gaussian:1,2,4,8:flow_map_g0=$M"
  # frontier: FLM at 1,024 steps is a reference; at 1 step FMLM decodes argmax delta(z_0; 0, 1), which no
  # temperature changes
  $PY benchmarks/quality.py --benchmark frontier --frontier "${Q[@]}" --temperatures 0.9,1.0,1.1 \
    --model "flm:gaussian:1024=$F"
  $PY benchmarks/quality.py --benchmark frontier --frontier "${Q[@]}" --temperatures 0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.3 \
    --model "flm:gaussian:8=$F" \
    --model "fmlm:gaussian:1,4,8=$M" \
    --model "fmlm-g0:gaussian:4,8:flow_map_g0=$M"
  $PY benchmarks/speed.py --dataset synthetic-flm --batch-size 32 --repeats $REPEATS \
    --model "teacher:mask:1024=$(printf $R small_teacher_mask)" \
    --model "student-blind:mask:8=$(printf $R small_student_mask)" \
    --model "flm:gaussian:1024,8=$F" \
    --model "fmlm:gaussian:1,8=$M"
fi

if [ "$STAGE" = text ]; then
  SAMPLES=${SAMPLES:-64}
  fit corpus_ar_judge configs/ar_judge_text_tiny.yaml --trainer.max_time=00:00:10:00 --seed_everything=1
  fit text_flm configs/text_flm.yaml --trainer.max_steps=${FLM_STEPS:-4250} "${TRAIN[@]}"
  F=$(printf $R text_flm)
  fit text_fmlm configs/text_fmlm.yaml --trainer.max_steps=${FMLM_STEPS:-1500} "${TRAIN[@]}" \
    --model.init_args.teacher_checkpoint=$F
  M=$(printf $R text_fmlm)
  $PY benchmarks/quality.py --benchmark baselines --dataset web-bible --config configs/text_tiny.yaml \
    --judges smollm2 ar:$(printf $R corpus_ar_judge) --num-samples $SAMPLES --seed 0 \
    --samples-dir runs/benchmarks/samples --keep-other-models \
    --model "flm:gaussian:$FLM_GRID=$F" \
    --model "fmlm:gaussian:1,2,4,8=$M" \
    --model "fmlm-g0:gaussian:1,2,4,8:flow_map_g0=$M"
fi
