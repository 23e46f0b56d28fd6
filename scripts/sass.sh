#!/usr/bin/env bash
# SASS of one CUDA file for sm_90a, on a machine whose CUDA install has nvcc but no cuobjdump or nvdisasm (the
# dev VM): nvcc builds a cubin, and Debian bookworm's non-free nvidia-cuda-toolkit (CUDA 11.8, fetched once into
# ~/.cache/selfe-sass without installing it or touching apt's own lists) disassembles it. nvdisasm 11.8 reads
# only the old ELF header encoding, so the copy it reads has e_flags rewritten to it (sm_90, 64-bit, unified
# texture mode) and ABI version 7; the code itself is untouched, and 11.8 decodes Hopper's HGMMA and mma.sync.
# Where nvdisasm is on PATH (the GPU machine), that one is used on the cubin as built.
#   bash scripts/sass.sh native/cuda/attention.cu > /tmp/attention.sass
set -euo pipefail
source="${1:?usage: sass.sh FILE.cu > FILE.sass}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
nvcc -std=c++17 -arch=sm_90a --expt-relaxed-constexpr -O3 -I "$root/native/include" -I "$root/native" -cubin "$source" -o "$work/code.cubin"
if command -v nvdisasm >/dev/null; then
  nvdisasm "$work/code.cubin"
  exit 0
fi
cache="${HOME}/.cache/selfe-sass"
tool="$cache/usr/bin/nvdisasm"
if [ ! -x "$tool" ]; then
  mkdir -p "$cache/lists/partial" "$cache/archives/partial"
  echo "deb http://deb.debian.org/debian bookworm non-free" >"$cache/sources.list"
  apt=(-o "Dir::Etc::sourcelist=$cache/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache")
  apt-get "${apt[@]}" update >&2
  (cd "$cache" && apt-get "${apt[@]}" download nvidia-cuda-toolkit >&2)
  dpkg -x "$cache"/nvidia-cuda-toolkit_*.deb "$cache"
fi
python3 - "$work/code.cubin" <<'PY'
import struct, sys
path = sys.argv[1]
elf = bytearray(open(path, "rb").read())
struct.pack_into("<I", elf, 48, 0x005A055A)  # EF_CUDA_SM90 | VIRTUAL_SM(90) | 64BIT_ADDRESS | TEXMODE_UNIFIED
elf[8] = 7  # the ELF ABI version CUDA 11 wrote
open(path, "wb").write(elf)
PY
LD_LIBRARY_PATH="$cache/usr/lib/x86_64-linux-gnu" "$tool" "$work/code.cubin"
