# Sourced by the reproduce_*.sh scripts: one training stage, skipped when its run directory is marked done.
TSDFM=.venv/bin/tsdfm
PY=.venv/bin/python
fit() {  # fit NAME CONFIG [overrides...]: CONFIG trained in the run directory runs/NAME
  local name=$1 config=$2; shift 2
  if [ $# -gt 0 ] && [[ $1 != --* ]]; then shift; fi  # a run directory named here, as stage lists once did: unused
  if [ -f "runs/$name/.done" ]; then echo "reuse runs/$name"; return; fi
  $TSDFM fit --overwrite --config "$config" --trainer.default_root_dir="runs/$name" "$@"  # not done: starts over
  touch "runs/$name/.done"
}
