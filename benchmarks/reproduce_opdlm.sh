#!/usr/bin/env bash
# OPDLM at CPU scale on the embedded corpus (benchmarks/results/opdlm.{jsonl,md}): BPE 2048, completions of 64 tokens
# in blocks of 4, 4 steps a block, batch 16, so 1,024 training tokens a step for every arm (tokens = train_steps x
# 1,024). One CPU thread:
#   benchmarks/reproduce_opdlm.sh arms       # about 30 minutes: the teacher causal LM (seed 0, 400 steps) and a second
#       causal LM as judge (seed 1, 250 steps); (a) block diffusion from scratch on data, 400 steps (judged at 5, 20,
#       100, 400); (b) the converted causal LM on data, random masks, 20 steps; (c) the converted model distilled
#       off-policy, 20 steps; (d) OPDLM on-policy, 20 steps (judged at 5, 20); (d') OPDLM with K=4 compass-shaped
#       rollouts, 5 steps (the corpus teacher's mask compass, `reproduce_importance.sh corpus`); 64 samples each at
#       T = 1, judged by SmolLM2-135M and by the seed-1 causal LM; the teacher's own ancestral samples are the ceiling
#   benchmarks/reproduce_opdlm.sh frontier   # about 35 minutes: the same models at more sampling temperatures, rows
#       matched at the data's entropy (every model tempered to reach it: confidence decoding is low-entropy at T = 1)
# OPDLM_SMOKE=1 shrinks every stage to seconds (a check of the script, not a measurement). Run from the repository root.
set -euo pipefail
STAGE=${1:-arms}
source benchmarks/stages.sh
SMOKE=${OPDLM_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  AR_TIME=(--trainer.max_time=null --trainer.max_steps=3); SCRATCH=6; MID=6; ARM=4; EARLY=2; SHAPED=2; N=4; EVERY=2
  BENCH=opdlm_smoke
else
  AR_TIME=(); SCRATCH=400; MID=100; ARM=20; EARLY=5; SHAPED=5; N=64; EVERY=5; BENCH=opdlm
fi
QUIET=(--trainer.enable_progress_bar=false)
T=runs/opdlm_causal_lm/checkpoints/last.ckpt
J=runs/opdlm_judge_ar/checkpoints/last.ckpt
D=runs/opdlm_d_onpolicy/checkpoints/last.ckpt
at() { ls runs/$1/checkpoints/*step=$2.ckpt | head -1; }  # the checkpoint of run $1 after $2 steps
Q=(--dataset web-bible --config configs/text_opdlm.yaml --judges smollm2 ar:$J --num-samples $N --seed 0
   --samples-dir runs/benchmarks/samples/opdlm --benchmark $BENCH)

if [ "$STAGE" = arms ]; then
  fit opdlm_causal_lm configs/ar_judge_text_tiny.yaml --trainer.max_time=null --trainer.max_steps=400 "${AR_TIME[@]}" "${QUIET[@]}"
  fit opdlm_judge_ar configs/ar_judge_text_tiny.yaml --trainer.max_time=null --trainer.max_steps=250 "${AR_TIME[@]}" "${QUIET[@]}" \
    --seed_everything=1
  A=(configs/text_opdlm.yaml --model.init_args.teacher_checkpoint=$T "${QUIET[@]}" --trainer.callbacks.every_n_train_steps=$EVERY)
  DATA_ARM=(--model.init_args.completions=data --model.init_args.states=random)
  fit opdlm_a_scratch "${A[@]}" --trainer.max_steps=$SCRATCH "${DATA_ARM[@]}" --model.init_args.init=scratch \
    --model.init_args.targets=data --model.init_args.optimizer.lr=1.0e-3 --model.init_args.optimizer.warmup_steps=20
  fit opdlm_b_converted_data "${A[@]}" --trainer.max_steps=$ARM "${DATA_ARM[@]}" --model.init_args.targets=data
  fit opdlm_c_converted_offpolicy "${A[@]}" --trainer.max_steps=$ARM "${DATA_ARM[@]}"
  fit opdlm_d_onpolicy "${A[@]}" --trainer.max_steps=$ARM
  C=runs/corpus_compass/checkpoints/last.ckpt
  for i in $(seq 1 30); do [ -f runs/corpus_compass/.done ] || [ "$SMOKE" = 1 ] && break; echo "waiting for $C ($i/30)"; sleep 30; done
  SHAPED_MODEL=()
  if [ -f runs/corpus_compass/.done ]; then
    fit opdlm_d_onpolicy_shaped4 "${A[@]}" --trainer.max_steps=$SHAPED --trainer.callbacks+=TrajectoryShaper \
      --trainer.callbacks.compass=$C --trainer.callbacks.num_candidates=4 --trainer.callbacks.policy=argmin
    SHAPED_MODEL=(--model "opdlm-shaped4-s$SHAPED:mask:64=runs/opdlm_d_onpolicy_shaped4/checkpoints/last.ckpt")
  else
    echo "no compass at $C: the shaped (K=4) arm is skipped"
fi
$PY benchmarks/quality.py "${Q[@]}" \
  --model "teacher-ar:mask:64:teacher=$D" \
  --model "bd-scratch-s$EARLY:mask:64=$(at opdlm_a_scratch $EARLY)" \
  --model "bd-scratch-s$ARM:mask:64=$(at opdlm_a_scratch $ARM)" \
  --model "bd-scratch-s$MID:mask:64=$(at opdlm_a_scratch $MID)" \
  --model "bd-scratch-s$SCRATCH:mask:64=runs/opdlm_a_scratch/checkpoints/last.ckpt" \
  --model "converted-data-s$ARM:mask:64=runs/opdlm_b_converted_data/checkpoints/last.ckpt" \
  --model "converted-offpolicy-s$ARM:mask:64=runs/opdlm_c_converted_offpolicy/checkpoints/last.ckpt" \
  --model "opdlm-s$EARLY:mask:64=$(at opdlm_d_onpolicy $EARLY)" \
  --model "opdlm-s$ARM:mask:64=$D" "${SHAPED_MODEL[@]}"
fi

if [ "$STAGE" = frontier ]; then         # T = 1 rows come from the arms stage; the frontier needs the data's entropy
  $PY benchmarks/quality.py "${Q[@]}" --keep-other-models --temperatures 1.25,1.5 \
    --model "bd-scratch-s$MID:mask:64=$(at opdlm_a_scratch $MID)" \
    --model "bd-scratch-s$SCRATCH:mask:64=runs/opdlm_a_scratch/checkpoints/last.ckpt" \
    --model "converted-data-s$ARM:mask:64=runs/opdlm_b_converted_data/checkpoints/last.ckpt" \
    --model "converted-offpolicy-s$ARM:mask:64=runs/opdlm_c_converted_offpolicy/checkpoints/last.ckpt" \
    --model "opdlm-s$EARLY:mask:64=$(at opdlm_d_onpolicy $EARLY)" \
    --model "opdlm-s$ARM:mask:64=$D" \
    --model "opdlm-shaped4-s$SHAPED:mask:64=runs/opdlm_d_onpolicy_shaped4/checkpoints/last.ckpt"
  $PY benchmarks/quality.py "${Q[@]}" --keep-other-models --frontier --temperatures 0.8,0.9 \
    --model "teacher-ar:mask:64:teacher=$D"
fi
