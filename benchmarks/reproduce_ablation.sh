#!/usr/bin/env bash
# Ablation of trajectory shaping on the synthetic language:  benchmarks/reproduce_ablation.sh [uniform|mask]
# K in {2, 4, 8} with argmin, and the three policies at K = 4, every student trained for the same 500
# optimizer steps from the same teacher and compass. K = 1 is blind distillation bit for bit
# (tests/test_shaper.py), so the blind run is the K = 1 row. Needs the teacher (reproduce_foundation.sh
# synthetic) and the compass (reproduce_shaping.sh synthetic). Writes benchmarks/results/shaping_ablation.*
set -euo pipefail
source benchmarks/stages.sh
SRC=${1:-uniform}
T=runs/synthetic_tiny_$SRC/checkpoints/last.ckpt
C=runs/synthetic_compass_$SRC/checkpoints/last.ckpt
STEPS=500  # a multiple of the config's checkpoint interval (250), so last.ckpt holds the final step
models=()
run() {  # run LABEL [shaper overrides...]: one student of the ablation, STEPS optimizer steps
  local label=$1; shift
  fit "ablation_${SRC}_$label" configs/synthetic_student.yaml \
    --model.init_args.teacher_checkpoint="$T" --trainer.max_steps=$STEPS --trainer.max_time=00:01:00:00 "$@"
  models+=(--model "$label:$SRC:1,2,4,8=runs/ablation_${SRC}_$label/checkpoints/last.ckpt")
}
SHAPE=(--trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass="$C")
run blind
run shaped-k2-argmin "${SHAPE[@]}" --trainer.callbacks.num_candidates=2
run shaped-k4-argmin "${SHAPE[@]}" --trainer.callbacks.num_candidates=4
run shaped-k8-argmin "${SHAPE[@]}" --trainer.callbacks.num_candidates=8
run shaped-k4-boltzmann "${SHAPE[@]}" --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=boltzmann \
  --trainer.callbacks.selection_temperature=0.5
run shaped-k4-s2t "${SHAPE[@]}" --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=sequence_to_token
$PY benchmarks/quality.py --benchmark shaping_ablation --dataset "synthetic-$SRC" --config configs/synthetic_tiny.yaml \
  --judges oracle "${models[@]}" --num-samples 256 --seed 0
