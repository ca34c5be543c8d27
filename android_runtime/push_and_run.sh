#!/usr/bin/env bash
# Push stretch_benchmark, libLiteRt.so and a bundle to a phone and run it there (adb).
#   LITERT_ANDROID_LIB=/path/to/arm64-v8a/libLiteRt.so ./push_and_run.sh BUNDLE_DIR [stretch_benchmark args...]
# Extra libraries (GPU accelerator libLiteRtOpenClAccelerator.so, NPU dispatch libraries) found next to
# libLiteRt.so are pushed too. Outputs come back to ./device-out/ when --output-dir is not given.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bundle="${1:?usage: push_and_run.sh BUNDLE_DIR [args...]}"; shift
lib="${LITERT_ANDROID_LIB:?set LITERT_ANDROID_LIB to the arm64-v8a libLiteRt.so}"
bin="$here/build-android/stretch_benchmark"
[ -x "$bin" ] || { echo "build first: ./build_android.sh" >&2; exit 1; }
dev="${DEVICE_DIR:-/data/local/tmp/stretch}"
name="$(basename "$bundle")"
adb shell "rm -rf $dev && mkdir -p $dev"
adb push "$bin" "$dev/" >/dev/null
for so in "$(dirname "$lib")"/*.so; do adb push "$so" "$dev/" >/dev/null; done
adb push "$bundle" "$dev/$name" >/dev/null
adb shell "cd $dev && LD_LIBRARY_PATH=$dev ADSP_LIBRARY_PATH=$dev ./stretch_benchmark --bundle $name --output-dir out $*"
mkdir -p device-out && adb pull "$dev/out/." device-out/ >/dev/null && echo "outputs: ./device-out/"
