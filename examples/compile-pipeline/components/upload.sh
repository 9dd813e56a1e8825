#!/usr/bin/env bash
# upload: the compiled model packed as upload/model.zip; train then stores it in the model folder.
# shellcheck source=components/common.sh source-path=SCRIPTDIR/..
source components/common.sh
mkdir -p upload
rm -f upload/model.zip
python3 -m zipfile -c upload/model.zip compile/model.bin.gz
echo "packed upload/model.zip"
