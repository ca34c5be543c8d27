#!/usr/bin/env bash
# Set up (scripts/setup.sh), install the native build tools the C++ runtime tests need if they are
# missing (Debian: cmake, ninja-build, g++, libflatbuffers-dev, flatbuffers-compiler for the test that
# regenerates the code derived from schemas/manifest.fbs, chromium for the HTML report test), then run the
# whole test suite (what CI runs), or with --fast only the fast tier: the tests not marked `slow` (under 2
# minutes, for quick feedback while developing). Every other argument is passed on to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# --fast is ours, not pytest's: rewrite it in place, keeping every other argument in its order.
for arg in "$@"; do
  shift
  if [ "$arg" = --fast ]; then
    set -- "$@" -m "not slow"
  else
    set -- "$@" "$arg"
  fi
done
bash scripts/setup.sh
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need+=(g++)
[ -f /usr/include/flatbuffers/flatbuffers.h ] || need+=(libflatbuffers-dev)
command -v flatc >/dev/null 2>&1 || need+=(flatbuffers-compiler)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # renders the HTML placement report in tests/report
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing build tools: ${need[*]} (install them with apt-get as root)" >&2
  fi
fi
exec .venv/bin/python -m pytest -q "$@"
