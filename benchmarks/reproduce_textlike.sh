#!/usr/bin/env bash
# The text-like oracle language (V=256, L=128, topic over syntax): teachers of both sources; blind students and
# students shaped by the oracle compass (K=4, K=16) or by a learned compass; the quality table (teachers 1..1024
# steps, the exact-posterior sampler, students 1..16 steps) and the matched-entropy frontier. Stages run one at a
# time, or in two lanes with OMP_NUM_THREADS=1:
#   benchmarks/reproduce_textlike.sh teachers | students | quality | frontier
# Stages whose run directory has a .done marker are skipped. Run from the repository root after `make install`.
set -euo pipefail
STAGE=${1:-teachers}
source benchmarks/stages.sh
T=runs/textlike_teacher_%s/checkpoints/last.ckpt
S=runs/textlike_student_%s/checkpoints/last.ckpt
O=runs/textlike_oracle_student_%s/checkpoints/last.ckpt
C=runs/textlike_compass_%s/checkpoints/last.ckpt
P=runs/textlike_learned_student_%s/checkpoints/last.ckpt
K=runs/textlike_oracle16_student_%s/checkpoints/last.ckpt
STUDENT_STEPS=750                      # optimizer steps of every student (blind and shaped alike)
QUALITY=(--dataset synthetic-textlike --config configs/textlike_teacher.yaml --judges oracle --num-samples 256
         --seed 0 --samples-dir runs/benchmarks/samples --keep-other-models)
TEMPERATURES=0.5,0.6,0.7,0.8,0.9,1.0

if [ "$STAGE" = teachers ]; then       # 2,750 optimizer steps each: 20 minutes on 2 idle cores
  fit textlike_teacher_mask configs/textlike_teacher.yaml
  fit textlike_teacher_uniform configs/textlike_teacher.yaml --model.init_args.source=uniform
fi

if [ "$STAGE" = students ]; then       # mask source: blind; shaped (K=4, argmin) by the exact data-path energy,
  fit textlike_student_mask configs/textlike_student.yaml \
    --trainer.max_steps=$STUDENT_STEPS
  fit textlike_oracle_student_mask configs/textlike_student.yaml \
    --trainer.max_steps=$STUDENT_STEPS --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle \
    --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=argmin
  fit textlike_oracle16_student_mask configs/textlike_student.yaml \
    --trainer.max_steps=$STUDENT_STEPS --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=oracle \
    --trainer.callbacks.num_candidates=16 --trainer.callbacks.policy=argmin
  fit textlike_compass_mask configs/textlike_compass.yaml   # and by a learned compass
  fit textlike_learned_student_mask configs/textlike_student.yaml \
    --trainer.max_steps=$STUDENT_STEPS --trainer.callbacks+=TrajectoryShaper \
    --trainer.callbacks.compass="$(printf $C mask)" --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=argmin
fi

if [ "$STAGE" = quality ]; then        # 1024 steps of the mask source with the first-hitting sampler (same law, <= L forwards)
  $PY benchmarks/quality.py "${QUALITY[@]}" \
    --model "teacher:mask:1,2,4,8,16,64=$(printf $T mask)" \
    --model "teacher:mask:256,1024:first_hitting=$(printf $T mask)" \
    --model "oracle-denoiser:mask:1,2,4,8,16,64=oracle" \
    --model "teacher:uniform:1,2,4,8,16,64=$(printf $T uniform)" \
    --model "oracle-denoiser:uniform:1,2,4,8,16,64=oracle" \
    --model "student-blind:mask:1,2,4,8,16=$(printf $S mask)" \
    --model "student-shaped:mask:1,2,4,8,16=$(printf $O mask)" \
    --model "student-shaped:mask:1,2,4,8,16=$(printf $P mask)"
  $PY benchmarks/quality.py "${QUALITY[@]}" --num-samples 64 \
    --model "teacher:uniform:256,1024=$(printf $T uniform)"
fi

if [ "$STAGE" = frontier ]; then       # matched entropy: temperature sweeps at 8 steps, and around T = 1 at 1024 steps
  $PY benchmarks/quality.py "${QUALITY[@]}" --benchmark frontier --frontier --temperatures 0.9,1.0,1.1 \
    --model "teacher:mask:1024:first_hitting=$(printf $T mask)"
  $PY benchmarks/quality.py "${QUALITY[@]}" --benchmark frontier --frontier --temperatures $TEMPERATURES \
    --model "teacher:mask:8=$(printf $T mask)" \
    --model "oracle-denoiser:mask:8=oracle" \
    --model "student-blind:mask:8=$(printf $S mask)" \
    --model "student-shaped:mask:8=$(printf $O mask)" \
    --model "student-shaped:mask:8=$(printf $P mask)" \
    --model "student-shaped-k16:mask:8=$(printf $K mask)"
fi
