#!/usr/bin/env bash
# Configure and build the runtime for this Linux x86-64 machine into android_runtime/build-host/, against the
# libLiteRt.so of the pinned ai-edge-litert wheel. Needs cmake, a C++17 compiler and libflatbuffers-dev
# (Debian: apt-get install -y cmake g++ libflatbuffers-dev).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
litert="${LITERT_LIB:-$("$py" -c 'import ai_edge_litert, os; print(os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so"))')}"
[ -f "$litert" ] || { echo "libLiteRt.so not found at $litert" >&2; exit 1; }
for tool in cmake c++; do command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y cmake g++" >&2; exit 1; }; done
cmake -S "$here" -B "$here/build-host" -DCMAKE_BUILD_TYPE=Release -DLITERT_LIB="$litert" >/dev/null
cmake --build "$here/build-host" -j"$(nproc)"
echo "built: $here/build-host/stretch_benchmark"
