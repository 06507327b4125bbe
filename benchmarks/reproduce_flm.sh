#!/usr/bin/env bash
# FLM and its flow-map distillation FMLM (plugin tsdfm-flm) next to every other model:
#   benchmarks/reproduce_flm.sh synthetic   # FLM 5,500 steps (as our teachers), FMLM 2,500 from it; oracle judge, 256
#                                           # samples: baselines rows (FLM at 8..1024 Euler steps, FMLM at 1, 2, 4, 8
#                                           # steps with g = 0.8 and g = 0), frontier rows (temperature sweeps, matched
#                                           # entropy) and speed rows; about 1.5 h on one thread
#   benchmarks/reproduce_flm.sh text        # embedded corpus: FLM 4,250 steps (as our text teachers), FMLM 1,500;
#                                           # SmolLM2-135M and the corpus causal-LM judge, 64 samples; about 1.5 h
# Each stage is its trainings and arms in benchmarks/registry/ (trainings.yaml, baselines.yaml, frontier.yaml,
# speed.yaml), run by benchmarks/run.py: runs whose directory has a .done marker are skipped, --dry-run prints the
# commands. The speed rows need the small language's teacher and blind student (reproduce_importance.sh small mask,
# trained when missing). Run from the repository root after `make install`.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source benchmarks/stages.sh
split_arguments "$@"
STAGE=${WORDS[0]:-synthetic}
case $STAGE in
  synthetic|text) $PY benchmarks/run.py --stage "reproduce_flm.sh $STAGE" "${FLAGS[@]}" ;;
  *) echo "unknown stage $STAGE: synthetic or text" >&2; exit 2 ;;
esac
