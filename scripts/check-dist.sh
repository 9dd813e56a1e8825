#!/usr/bin/env bash
# dist/ is committed: it must be exactly what a fresh bundle of src/ produces.
set -euo pipefail
npm run -s bundle
if [ -n "$(git status --porcelain -- dist)" ]; then
  echo "dist/ differs from a fresh 'npm run bundle' of src/: run it and commit dist/." >&2
  git status --porcelain -- dist >&2
  exit 1
fi
echo "dist/ matches src/"
