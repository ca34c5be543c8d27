"""Bazel rule `stretchc_bundle`: compile an ONNX model into a stretchc bundle (a declared directory).

    load("//bazel:defs.bzl", "stretchc_bundle")

    stretchc_bundle(
        name = "branchy_bundle",
        model = "models/branchy.onnx",
        model_data = glob(["models/branchy.onnx.data"]),   # external-data files, if any
        target = "pixel6",                # a phone name, or use target_file = "my_phone.yaml"
        calib = glob(["calib/**"]),       # calibration files (optional)
        calib_dir = "calib",              # the --calib path, relative to the package (optional)
        config = "stretchc.toml",         # project defaults (optional)
        opts = ["--place", "s1.b1=gpu"],
    )

The output is one directory, `<name>.stretch`, declared with `ctx.actions.declare_directory`. Bazel
tracks inputs itself, so no depfile is used: every file the bundle depends on must be listed (`model`,
`model_data`, `calib`, `target_file`, `config`). stretchc is deterministic (identical inputs and options
give identical bytes), so the action is cacheable locally and remotely. The action runs with
`--no-cache`, since Bazel's own action cache plays the role of stretchc's lowering cache and the sandbox
should not write outside the output tree; drop it (and set STRETCHC_CACHE_DIR via --action_env) if you
prefer stretchc's cache across unrelated targets.

The `stretchc` executable is an attribute (`compiler`, default `//tools:stretchc`): point it at a
py_binary wrapping `stretchc.cli:main` from your pinned Python dependencies, or at a sh_binary that runs an
installed `stretchc`. Not tested in this repository (no Bazel here); written for Bazel >= 6.
"""

def _stretchc_bundle_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name + ".stretch")
    args = ctx.actions.args()
    args.add("compile")
    args.add(ctx.file.model.path)
    if ctx.file.target_file:
        args.add("-t", ctx.file.target_file.path)
    else:
        args.add("-t", ctx.attr.target)
    args.add("-o", out.path)
    args.add("-q")
    args.add("--no-cache")
    inputs = [ctx.file.model] + ctx.files.model_data + ctx.files.calib
    if ctx.file.target_file:
        inputs.append(ctx.file.target_file)
    if ctx.attr.calib_dir:
        pkg = ctx.label.package
        args.add("--calib", (pkg + "/" + ctx.attr.calib_dir) if pkg else ctx.attr.calib_dir)
    if ctx.file.config:
        args.add("--config", ctx.file.config.path)
        inputs.append(ctx.file.config)
    args.add_all(ctx.attr.opts)
    ctx.actions.run(
        executable = ctx.executable.compiler,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "StretchcCompile",
        progress_message = "stretchc: compiling %s for %s" % (ctx.label, ctx.attr.target),
        env = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"},
    )
    return [DefaultInfo(files = depset([out]))]

stretchc_bundle = rule(
    implementation = _stretchc_bundle_impl,
    doc = "Compiles an ONNX model into a stretchc bundle directory `<name>.stretch`.",
    attrs = {
        "model": attr.label(mandatory = True, allow_single_file = [".onnx"], doc = "the ONNX model"),
        "model_data": attr.label_list(allow_files = True, doc = "external-data files of the model"),
        "target": attr.string(default = "pixel6", doc = "a phone name known to stretchc"),
        "target_file": attr.label(allow_single_file = [".yaml", ".yml"], doc = "a target YAML file (overrides target)"),
        "calib": attr.label_list(allow_files = True, doc = "calibration files (inputs of the action)"),
        "calib_dir": attr.string(doc = "the --calib path (a file or directory), relative to this package"),
        "config": attr.label(allow_single_file = [".toml"], doc = "a stretchc.toml with project defaults"),
        "opts": attr.string_list(doc = "more `stretchc compile` arguments"),
        "compiler": attr.label(
            default = Label("//tools:stretchc"),
            executable = True,
            cfg = "exec",
            doc = "the stretchc executable",
        ),
    },
)
