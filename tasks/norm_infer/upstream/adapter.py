"""kpilot fidelity adapter for tasks/norm_infer: SGLang 0.5.23's Triton inference norms.

Loads sglang/kernels/ops/diffusion/norm/norm_triton.py (norm_infer) and
sglang/kernels/ops/diffusion/norm/rmsnorm_onepass_triton.py (triton_one_pass_rms_norm) straight
from the unpacked wheel, with the two small wheel files they import that need only torch
(common/platform.py, kernel_api_logging.py). What the GPU machine lacks is stubbed in
sys.modules, nothing more:

  * the package __init__ files on the way (sglang, sglang.kernels, ...): empty packages whose
    __path__ points into the wheel, so the real __init__ side effects do not run;
  * sglang.multimodal_gen.runtime.platforms.current_platform: a CUDA platform (is_cuda() true,
    every other is_*() false), which is what common/platform.py's select_impl asks;
  * sglang.srt.utils.custom_op.register_custom_op: returns the decorated function itself.
    The real one (srt/utils/custom_op.py) needs sglang.srt.utils.common to register a torch op;
    for a plain eager call (no compile, no grad, plain CUDA tensors) its wrapper calls the
    function directly (_call_directly_in_eager), which is what the stub does.

launcher() calls the public entry points the way SGLang 0.5.23's production callers do on CUDA:
  norm_infer
      multimodal_gen/runtime/layers/layernorm.py LayerNorm.forward_triton:
      norm_infer(x.view(-1, hidden_size), weight, bias, eps=eps, is_rms_norm=False); the task's
      is_rms_norm scalar is passed through (True for the RMS regression rows).
  triton_one_pass_rms_norm
      multimodal_gen/runtime/layers/layernorm.py RMSNorm.forward_cuda:
      triton_one_pass_rms_norm(x, self.weight.data, self.variance_epsilon).
"""

import importlib.util
import os
import sys
import types

FILES = [
    "sglang/kernels/ops/diffusion/norm/norm_triton.py",
    "sglang/kernels/ops/diffusion/norm/rmsnorm_onepass_triton.py",
    "sglang/kernels/ops/diffusion/common/platform.py",
    "sglang/kernels/kernel_api_logging.py",
]

_NORM = None  # norm_triton module
_ONEPASS = None  # rmsnorm_onepass_triton module

_PACKAGES = [
    "sglang",
    "sglang.kernels",
    "sglang.kernels.ops",
    "sglang.kernels.ops.diffusion",
    "sglang.kernels.ops.diffusion.common",
    "sglang.kernels.ops.diffusion.norm",
]


class _CudaPlatform:
    """Stand-in for sglang.multimodal_gen.runtime.platforms.current_platform on an NVIDIA GPU."""

    def is_cuda(self):
        return True

    def __getattr__(self, name):
        if name.startswith("is_"):
            return lambda *a, **k: False
        raise AttributeError(name)


def _package(name, path):
    mod = sys.modules.get(name)
    if mod is None:
        mod = types.ModuleType(name)
        mod.__path__ = [path] if path else []
        sys.modules[name] = mod
    return mod


def _load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _register_custom_op(fn=None, **_kwargs):
    if fn is not None:
        return fn
    return lambda f: f


def load(upstream_root: str) -> None:
    """Import upstream's two kernel modules from the unpacked wheel at upstream_root (the folder
    holding sglang/)."""
    global _NORM, _ONEPASS
    root = os.path.abspath(upstream_root)
    for pkg in _PACKAGES:
        _package(pkg, os.path.join(root, *pkg.split(".")))

    # Stubs for what the GPU machine does not have.
    for pkg in ("sglang.multimodal_gen", "sglang.multimodal_gen.runtime", "sglang.srt", "sglang.srt.utils"):
        _package(pkg, None)
    platforms = types.ModuleType("sglang.multimodal_gen.runtime.platforms")
    platforms.current_platform = _CudaPlatform()
    sys.modules[platforms.__name__] = platforms
    custom_op = types.ModuleType("sglang.srt.utils.custom_op")
    custom_op.register_custom_op = _register_custom_op
    sys.modules[custom_op.__name__] = custom_op

    # The real wheel files, dependencies first.
    for rel in (FILES[3], FILES[2]):
        _load_file(rel[: -len(".py")].replace("/", "."), os.path.join(root, rel))
    _NORM = _load_file(FILES[0][: -len(".py")].replace("/", "."), os.path.join(root, FILES[0]))
    _ONEPASS = _load_file(FILES[1][: -len(".py")].replace("/", "."), os.path.join(root, FILES[1]))


def launcher(entry: str, t: dict, s: dict):
    """A zero-argument callable running upstream's production entry point once on torch's current
    CUDA stream; it returns {output tensor name: tensor upstream computed}.

    The callable is tried once here, eagerly: a row upstream rejects (its wrapper raises or Triton
    refuses to compile the tile) becomes NotImplementedError instead of an exception in the middle
    of a graph capture, and Triton compiles before any capture starts."""
    run = _launcher(entry, t, s)
    try:
        run()
    except Exception as e:  # ValueError, RuntimeError, AssertionError, triton CompilationError
        raise NotImplementedError(f"upstream raises {type(e).__name__}: {e}") from e
    return run


def _launcher(entry, t, s):
    if _NORM is None or _ONEPASS is None:
        raise RuntimeError("adapter.load() was not called")

    if entry == "norm_infer":
        x, weight, bias = t["x"], t.get("weight"), t.get("bias")
        eps = float(s["eps"])
        rms = bool(s["is_rms_norm"])

        def run():
            return {"out": _NORM.norm_infer(x, weight, bias, eps=eps, is_rms_norm=rms)}

        return run

    if entry == "triton_one_pass_rms_norm":
        x, w = t["x"], t["w"]
        eps = float(s["eps"])

        def run():
            return {"out": _ONEPASS.triton_one_pass_rms_norm(x, w, eps)}

        return run

    raise NotImplementedError(f"unknown entry {entry}")
