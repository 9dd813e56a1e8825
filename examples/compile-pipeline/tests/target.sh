#!/usr/bin/env bash
# the compiled model says which target it was built for
gzip -dc compile/model.bin.gz | head -1 | grep -q '^target='
