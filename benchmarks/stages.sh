# Sourced by the reproduce_*.sh scripts: one training stage, skipped when its run directory is marked done and
# continued from its own last.ckpt when it was interrupted.
TSDFM=.venv/bin/tsdfm
PY=.venv/bin/python
fit() {  # fit NAME CONFIG [overrides...]: CONFIG trained in the run directory runs/NAME
  local name=$1 config=$2 resume=(); shift 2
  if [ $# -gt 0 ] && [[ $1 != --* ]]; then shift; fi  # a run directory named here, as stage lists once did: unused
  if [ -f "runs/$name/.done" ]; then echo "reuse runs/$name"; return; fi
  if [ -f "runs/$name/checkpoints/last.ckpt" ]; then  # interrupted: continue from its own checkpoint (exact resume)
    echo "resume runs/$name from its last.ckpt"
    resume=(--ckpt_path="runs/$name/checkpoints/last.ckpt")  # last, so it wins over a --ckpt_path to start from
  fi
  $TSDFM fit --overwrite --config "$config" --trainer.default_root_dir="runs/$name" "$@" "${resume[@]}"
  touch "runs/$name/.done"
}
