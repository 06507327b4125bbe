# Sourced by the reproduce_*.sh scripts: one training stage, skipped when its run directory is marked done.
TSDFM=.venv/bin/tsdfm
PY=.venv/bin/python
fit() {  # fit NAME CONFIG RUN_DIR_IN_CONFIG [overrides...]: CONFIG with its run directory renamed runs/NAME
  local name=$1 config=$2 from=$3; shift 3
  if [ -f "runs/$name/.done" ]; then echo "reuse runs/$name"; return; fi
  sed "s#$from#runs/$name#g" "$config" > "/tmp/$name.yaml"
  $TSDFM fit --overwrite --config "/tmp/$name.yaml" "$@"  # a stage not marked done starts over
  touch "runs/$name/.done"
}
