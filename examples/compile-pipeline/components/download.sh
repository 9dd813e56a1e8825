#!/usr/bin/env bash
# download: the uncompiled model (brought next to the code from the store as model.bin) into download/.
# shellcheck source=components/common.sh source-path=SCRIPTDIR/..
source components/common.sh
mkdir -p download
cp model.bin download/model.bin
echo "downloaded $(wc -c < download/model.bin) bytes"
