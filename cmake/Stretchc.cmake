# Stretchc.cmake — compile stretchc bundles as part of a CMake build.
#
#   include(path/to/stretchc/cmake/Stretchc.cmake)
#   stretchc_add_bundle(branchy
#     MODEL   ${CMAKE_CURRENT_SOURCE_DIR}/models/branchy.onnx
#     TARGET  pixel6                       # a phone name or a target YAML file
#     [CALIB  ${CMAKE_CURRENT_SOURCE_DIR}/calib]   # file or directory, recorded as a dependency
#     [CONFIG ${CMAKE_CURRENT_SOURCE_DIR}/stretchc.toml]
#     [OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/branchy.stretch]
#     [OPTIONS --place s1.b1=gpu ...])     # more `stretchc compile` arguments
#
# Creates a custom target `<NAME>` (in ALL) whose output is `<OUTPUT_DIR>/manifest.json`, and sets
# `<NAME>_BUNDLE_DIR` in the caller's scope. The command writes a depfile (`stretchc compile --depfile`)
# listing the model, its external data, calibration files, the target YAML and the config file, so the
# bundle is rebuilt exactly when one of those changes (or the OPTIONS change the command line).
#
# Needs CMake >= 3.20 (DEPFILE with policy CMP0116) and a generator that supports DEPFILE: Ninja or
# Ninja Multi-Config (also Makefiles from CMake 3.20, and Xcode/VS from 3.21). The `stretchc` executable is
# found on PATH or given with -DSTRETCHC_EXECUTABLE=...; the lowering cache lives in
# $STRETCHC_CACHE_DIR (default ~/.cache/stretchc).
cmake_minimum_required(VERSION 3.20)

if(POLICY CMP0116)
  cmake_policy(SET CMP0116 NEW)
endif()

find_program(STRETCHC_EXECUTABLE stretchc DOC "the stretchc compiler")

function(stretchc_add_bundle NAME)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "MODEL;TARGET;CALIB;CONFIG;OUTPUT_DIR" "OPTIONS")
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "stretchc_add_bundle(${NAME}): MODEL is required")
  endif()
  if(NOT STRETCHC_EXECUTABLE)
    message(FATAL_ERROR "stretchc_add_bundle(${NAME}): stretchc not found; set STRETCHC_EXECUTABLE")
  endif()
  if(NOT ARG_TARGET)
    set(ARG_TARGET pixel6)
  endif()
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/${NAME}.stretch")
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  get_filename_component(outdir "${ARG_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  set(manifest "${outdir}/manifest.json")
  set(depfile "${CMAKE_CURRENT_BINARY_DIR}/${NAME}.stretch.d")

  set(target_arg "${ARG_TARGET}")
  if(ARG_TARGET MATCHES "\\.ya?ml$" OR ARG_TARGET MATCHES "/")
    get_filename_component(target_arg "${ARG_TARGET}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()
  set(cmd "${STRETCHC_EXECUTABLE}" compile "${model}" -t "${target_arg}" -o "${outdir}"
          --depfile "${depfile}" -q)
  if(ARG_CALIB)
    get_filename_component(calib "${ARG_CALIB}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND cmd --calib "${calib}")
  endif()
  if(ARG_CONFIG)
    get_filename_component(config "${ARG_CONFIG}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND cmd --config "${config}")
  endif()
  list(APPEND cmd ${ARG_OPTIONS})

  add_custom_command(
    OUTPUT "${manifest}"
    COMMAND ${cmd}
    # The model is also a plain dependency, so the very first build (before any depfile exists) has it.
    DEPENDS "${model}"
    DEPFILE "${depfile}"
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    COMMENT "stretchc: compiling ${NAME} for ${ARG_TARGET}"
    VERBATIM)
  add_custom_target(${NAME} ALL DEPENDS "${manifest}")
  set(${NAME}_BUNDLE_DIR "${outdir}" PARENT_SCOPE)
endfunction()
