# shellcheck shell=bash
# Sourced by each component: settings from compile.env unless the environment already has them.
set -euo pipefail
while IFS='=' read -r k v; do
  case "$k" in '' | \#*) continue ;; esac
  if [ -z "${!k:-}" ]; then export "$k=$v"; fi
done < compile.env
