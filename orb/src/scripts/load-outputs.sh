#!/usr/bin/env bash
# Exports the outputs that earlier model-pipeline jobs left in the workspace ($PARAM_OUTPUTS_DIR/*.env,
# MP_NAME='value' lines) to the following steps of this job through $BASH_ENV.
set -euo pipefail

dir="${PARAM_OUTPUTS_DIR:-/tmp/model-pipeline/outputs}"
if [ -z "${BASH_ENV:-}" ]; then
  echo "error: BASH_ENV is not set (this script is meant to run in a CircleCI step)" >&2
  exit 2
fi
shopt -s nullglob
files=("$dir"/*.env)
if [ ${#files[@]} -eq 0 ]; then
  echo "no model-pipeline outputs in $dir (did the workspace get attached, and did an earlier job run?)"
  exit 0
fi
# `set -a`: exported, so programs started by later steps see them too
echo "set -a" >> "$BASH_ENV"
for f in "${files[@]}"; do
  echo "loading $f"
  cat "$f" >> "$BASH_ENV"
done
echo "set +a" >> "$BASH_ENV"
