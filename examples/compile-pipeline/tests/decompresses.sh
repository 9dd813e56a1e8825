#!/usr/bin/env bash
# the compiled model decompresses and still holds the uncompiled bytes
gzip -dc compile/model.bin.gz | tail -n +2 | cmp - download/model.bin
