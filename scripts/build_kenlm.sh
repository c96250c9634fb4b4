#!/usr/bin/env bash
# Build KenLM's lmplz, build_binary and query from the kenlm==0.3.0 source distribution on PyPI and
# install them into the venv's bin/. The kenlm wheel only queries models; training needs these.
# Idempotent: does nothing when the three binaries are already there.
set -euo pipefail
VENV=${1:-.venv}
KENLM_VERSION=0.3.0
BIN="$VENV/bin"
if [ -x "$BIN/lmplz" ] && [ -x "$BIN/build_binary" ] && [ -x "$BIN/query" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "==> building KenLM $KENLM_VERSION (lmplz, build_binary, query)"
"$BIN/pip" download -q --no-deps --no-binary kenlm --no-build-isolation "kenlm==$KENLM_VERSION" -d "$work" \
  2> >(grep -v '^WARNING: Location' >&2)
tar -xzf "$work/kenlm-$KENLM_VERSION.tar.gz" -C "$work"
src="$work/kenlm-$KENLM_VERSION"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF \
  -DENABLE_INTERPOLATE=OFF >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target lmplz build_binary query -j "$(nproc)" >"$work/make.log" 2>&1 \
  || { tail -50 "$work/make.log" >&2; exit 1; }
for tool in lmplz build_binary query; do
  install -m 0755 "$work/build/bin/$tool" "$BIN/$tool.tmp"
  mv -f "$BIN/$tool.tmp" "$BIN/$tool"
done
echo "==> KenLM tools installed in $BIN"
