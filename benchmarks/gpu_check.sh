#!/usr/bin/env bash
# The GPU check, for the first H100/H200 at hand: under 10 minutes on one GPU with only torch and lightning (no
# internet, no jsonargparse: nothing is installed, the repository is put on PYTHONPATH and the modules are called
# from Python). It runs the GPU-marked tests, then benchmarks/gpu_check.py (170M teacher training throughput in bf16
# with SDPA and, where installed, flash-attn; shaping cost per distillation step at K = 1, 4, 8; 8-step against
# 1024-step sampling) and writes benchmarks/results/gpu_check.{jsonl,md}.
#   bash benchmarks/gpu_check.sh                          # on the GPU machine
#   bash benchmarks/gpu_check.sh --tiny --results-dir DIR # the CPU dry run at tiny sizes (tests/test_gpu_check.py)
# PYTHON names the interpreter (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD:$PWD/plugins/mdlm:$PWD/plugins/sedd${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

"$PYTHON" -c "import torch, lightning; print(f'torch {torch.__version__}, lightning {lightning.__version__}, cuda {torch.cuda.is_available()}')" || exit 1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# the GPU-marked tests (skipped without a CUDA device); their outcome becomes a row
log=$(mktemp)
"$PYTHON" -m pytest -q -m gpu -p no:cacheprovider $(grep -l "mark.gpu" tests/test_*.py) 2>&1 | tee "$log"
tests_exit=${PIPESTATUS[0]}
summary=$(grep -E "passed|failed|skipped|error|no tests ran" "$log" | tail -1)
rm -f "$log"

"$PYTHON" benchmarks/gpu_check.py --tests-exit "$tests_exit" --tests-summary "$summary" "$@"
