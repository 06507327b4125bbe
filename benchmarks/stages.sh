# Sourced by the reproduce_*.sh scripts. A stage the registry covers (benchmarks/registry/*.yaml) is one call of
# benchmarks/run.py; `fit` trains the runs of the stages it does not cover yet.
TSDFM=.venv/bin/tsdfm
PY=.venv/bin/python
split_arguments() {  # split_arguments "$@": WORDS, the stage and its arguments; FLAGS, the --options for run.py
  WORDS=(); FLAGS=()
  local arg
  for arg in "$@"; do if [[ $arg == --* ]]; then FLAGS+=("$arg"); else WORDS+=("$arg"); fi; done
}
fit() {  # fit NAME CONFIG [overrides...]: CONFIG trained in the run directory runs/NAME, skipped when marked done and
  # continued from its own last.ckpt when it was interrupted
  local name=$1 config=$2 resume=(); shift 2
  if [ $# -gt 0 ] && [[ $1 != --* ]]; then
    echo "fit $name: unexpected argument '$1': overrides start with --" >&2; return 2
  fi
  if [ -f "runs/$name/.done" ]; then echo "reuse runs/$name"; return; fi
  if [ -f "runs/$name/checkpoints/last.ckpt" ]; then  # interrupted: continue from its own checkpoint (exact resume)
    echo "resume runs/$name from its last.ckpt"
    resume=(--ckpt_path="runs/$name/checkpoints/last.ckpt")  # last, so it wins over a --ckpt_path to start from
  fi
  $TSDFM fit --overwrite --config "$config" --trainer.default_root_dir="runs/$name" "$@" "${resume[@]}"
  touch "runs/$name/.done"
}
