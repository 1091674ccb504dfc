#!/usr/bin/env bash
# Rebuild bpf/iowhy.bpf.o from bpf/iowhy.bpf.c. The object is checked in so that
# `cargo build` needs no clang; run this after changing the C source.
#   apt-get install clang libbpf-dev llvm   # build-time only
set -euo pipefail
cd "$(dirname "$0")"
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
clang -g -O2 -target bpf -D__TARGET_ARCH_"$arch" \
  -I/usr/include/"$(uname -m)"-linux-gnu \
  -c iowhy.bpf.c -o iowhy.bpf.o
# Keep the BTF (needed for CO-RE) but drop DWARF line info to keep the object small.
llvm-strip -g iowhy.bpf.o 2>/dev/null || true
ls -l iowhy.bpf.o
