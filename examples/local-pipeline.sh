#!/usr/bin/env bash
# The main job on the local backend, on a fresh machine with no AWS: a throwaway git repo made from
# examples/demo-repo bumps its model version on a branch; then needs-model -> train -> promote -> status,
# with a folder as the model store and a local process as the "instance".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# the bundled CLI of this clone (PIPELINE_CLI: another build of it, e.g. npm run gen's fresh bundle)
cli="${PIPELINE_CLI:-$root/dist/cli/index.js}"
mp() { node "$cli" "$@"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/model-pipeline-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
repo="$work/repo"
cp -R "$root/examples/demo-repo" "$repo"
cd "$repo"
git init -q -b main
git -c user.email=demo@example.com -c user.name=demo commit -q --allow-empty -m "empty"
git add -A
git -c user.email=demo@example.com -c user.name=demo commit -q -m "model 1.0.0"
git checkout -q -b feature/better-model
sed -i.bak 's/^version = "1.0.0"/version = "1.1.0"/' search-config.toml && rm -f search-config.toml.bak
git -c user.email=demo@example.com -c user.name=demo commit -q -am "bump model to 1.1.0"

# input data the training reads: the store's raw_source_data.zip, 24 MiB (mostly padding) so its download
# shows the progress lines a CI log gets for a large transfer (a line every 10 % or 10 s)
mkdir -p .model-store
python3 -c 'import zipfile; z = zipfile.ZipFile(".model-store/raw_source_data.zip", "w"); z.writestr("data.csv", "query,doc\na,b\n"); z.writestr("padding.bin", bytes(24 * 1024 * 1024)); z.close()'

echo "== needs-model"
mp needs-model --local --base-ref main
echo "== train"
mp train --local
echo "== promote development"
mp promote --local --environment development
echo "== status"
mp status --local
echo "== needs-model again (the model exists now)"
mp needs-model --local --base-ref main
