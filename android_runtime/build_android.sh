#!/usr/bin/env bash
# Cross-compile the runtime for Android arm64 with the NDK's CMake toolchain into android_runtime/build-android/.
#   ANDROID_NDK=/path/to/ndk  LITERT_ANDROID_LIB=/path/to/arm64-v8a/libLiteRt.so  ./build_android.sh
# libLiteRt.so for arm64: the jni/arm64-v8a/libLiteRt.so inside the LiteRT Android package
# (Maven com.google.ai.edge.litert:litert, same release as ai-edge-litert 2.3.0). FlatBuffers 2.0.8 headers
# are taken from the host (header-only), copied so the NDK does not see the host's /usr/include.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ndk="${ANDROID_NDK:-${ANDROID_NDK_HOME:-}}"
[ -n "$ndk" ] && [ -f "$ndk/build/cmake/android.toolchain.cmake" ] || { echo "set ANDROID_NDK to an NDK (r25 or newer)" >&2; exit 1; }
lib="${LITERT_ANDROID_LIB:-}"
[ -f "$lib" ] || { echo "set LITERT_ANDROID_LIB to the arm64-v8a libLiteRt.so" >&2; exit 1; }
fb="${FLATBUFFERS_INCLUDE:-/usr/include}"
[ -f "$fb/flatbuffers/flatbuffers.h" ] || { echo "flatbuffers headers not found (apt-get install libflatbuffers-dev or set FLATBUFFERS_INCLUDE)" >&2; exit 1; }
inc="$here/build-android/fb-include"
mkdir -p "$inc" && rm -rf "$inc/flatbuffers" && cp -r "$fb/flatbuffers" "$inc/"
cmake -S "$here" -B "$here/build-android" \
  -DCMAKE_TOOLCHAIN_FILE="$ndk/build/cmake/android.toolchain.cmake" \
  -DANDROID_ABI=arm64-v8a -DANDROID_PLATFORM="${ANDROID_PLATFORM:-android-26}" -DANDROID_STL=c++_static \
  -DCMAKE_BUILD_TYPE=Release -DLITERT_LIB="$lib" -DFLATBUFFERS_INCLUDE_DIR="$inc"
cmake --build "$here/build-android" -j"$(nproc)" --target stretch_benchmark
echo "built: $here/build-android/stretch_benchmark"
