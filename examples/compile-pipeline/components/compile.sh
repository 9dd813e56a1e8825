#!/usr/bin/env bash
# compile: a stand-in compiler that tags the model with the target and compresses it into compile/.
# shellcheck source=components/common.sh source-path=SCRIPTDIR/..
source components/common.sh
mkdir -p compile
{ echo "target=$COMPILE_TARGET level=$COMPILE_LEVEL"; cat download/model.bin; } | gzip -n -"$COMPILE_LEVEL" > compile/model.bin.gz
echo "compiled for $COMPILE_TARGET"
