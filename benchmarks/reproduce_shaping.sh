#!/usr/bin/env bash
# TS-DFM, both sources: energy compasses, shaped students (same optimizer steps as the blind students), the
# quality table (teacher 1..1024 steps, blind and shaped students 1..16 steps), sampling speed, shaping cost.
#   benchmarks/reproduce_shaping.sh synthetic   # needs reproduce_foundation.sh synthetic + reproduce_student.sh
#   benchmarks/reproduce_shaping.sh text        # needs reproduce_foundation.sh text; trains the blind students too
# Stages whose run directory has a .done marker are skipped. Run from the repository root after `make install`.
set -euo pipefail
STAGE=${1:-synthetic}
source benchmarks/stages.sh
if [ "$STAGE" = synthetic ]; then
T=runs/synthetic_tiny_%s/checkpoints/last.ckpt
C=runs/synthetic_compass_%s/checkpoints/last.ckpt
S=runs/synthetic_student_%s/checkpoints/last.ckpt
H=runs/synthetic_shaped_student_%s/checkpoints/last.ckpt
declare -A STEPS=([mask]=2000 [uniform]=3000)   # optimizer steps of the blind students
for src in mask uniform; do
  fit synthetic_compass_$src configs/synthetic_compass.yaml \
    --model.init_args.teacher_checkpoint="$(printf $T $src)"
  fit synthetic_shaped_student_$src configs/synthetic_shaped_student.yaml \
    --model.init_args.teacher_checkpoint="$(printf $T $src)" --trainer.callbacks.compass="$(printf $C $src)" \
    --trainer.max_steps="${STEPS[$src]}" --trainer.max_time=00:02:00:00
done
models=()
for src in mask uniform; do
  models+=(--model "teacher:$src:1,2,4,8,16,64,256,1024=$(printf $T $src)"
           --model "student-blind:$src:1,2,4,8,16=$(printf $S $src)"
           --model "student-shaped:$src:1,2,4,8,16=$(printf $H $src)")
done
$PY benchmarks/quality.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle \
  "${models[@]}" --num-samples 256 --seed 0
$PY benchmarks/speed.py --dataset synthetic --batch-size 32 --repeats 3 \
  --model "teacher:mask:1024=$(printf $T mask)" --model "student-blind:mask:8=$(printf $S mask)" \
  --model "student-shaped:mask:8=$(printf $H mask)" \
  --model "teacher:uniform:1024=$(printf $T uniform)" --model "student-blind:uniform:8=$(printf $S uniform)" \
  --model "student-shaped:uniform:8=$(printf $H uniform)"
$PY benchmarks/shaping_cost.py --dataset synthetic --config configs/synthetic_student.yaml \
  --teacher "$(printf $T mask)" --compass "$(printf $C mask)" --num_candidates 1 2 4 8
fi

if [ "$STAGE" = text ]; then
T=runs/text_tiny_%s/checkpoints/last.ckpt
C=runs/text_compass_%s/checkpoints/last.ckpt
S=runs/text_student_%s/checkpoints/last.ckpt
H=runs/text_shaped_student_%s/checkpoints/last.ckpt
STEPS=750   # optimizer steps of every text student (the last checkpoint of a 10-minute run on 1 thread)
for src in mask uniform; do
  fit text_student_$src configs/text_student.yaml \
    --model.init_args.teacher_checkpoint="$(printf $T $src)" --trainer.max_steps=$STEPS --trainer.max_time=00:01:00:00
  fit text_compass_$src configs/text_compass.yaml \
    --model.init_args.teacher_checkpoint="$(printf $T $src)"
  fit text_shaped_student_$src configs/text_student.yaml \
    --model.init_args.teacher_checkpoint="$(printf $T $src)" --trainer.max_steps=$STEPS --trainer.max_time=00:01:00:00 \
    --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass="$(printf $C $src)" --trainer.callbacks.num_candidates=4
done
models=()
for src in mask uniform; do  # the teachers' 64..1024-step rows (same checkpoints, seed, judges): teacher_steps.jsonl
  models+=(--model "teacher:$src:1,2,4,8,16=$(printf $T $src)"
           --model "student-blind:$src:1,2,4,8,16=$(printf $S $src)"
           --model "student-shaped:$src:1,2,4,8,16=$(printf $H $src)")
done
$PY benchmarks/quality.py --dataset web-bible --config configs/text_tiny.yaml \
  --judges ar:runs/ar_judge_text/checkpoints/last.ckpt smollm2 "${models[@]}" --num-samples 64 --seed 0
fi
