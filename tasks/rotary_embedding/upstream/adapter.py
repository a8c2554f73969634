"""kpilot fidelity adapter for tasks/rotary_embedding: SGLang 0.5.23's two Triton rotary kernels.

Loads sglang/kernels/ops/diffusion/rope/rotary_triton.py (apply_rotary_embedding) and
sglang/kernels/ops/diffusion/rope/ltx2_rotary_triton.py (apply_ltx2_split_rotary_emb) straight from
the unpacked wheel, with the one small wheel file rotary_triton imports (common/platform.py, which
needs only torch). What the GPU machine lacks is stubbed in sys.modules, nothing more:

  * the package __init__ files on the way (sglang, sglang.kernels, ...): empty packages whose
    __path__ points into the wheel, so the real __init__ side effects (registry, lazy exports,
    heavy imports) do not run;
  * sglang.multimodal_gen.runtime.platforms.current_platform: a CUDA platform (is_cuda() true,
    every other is_*() false), which select_impl asks at import time, so apply_rotary_embedding is
    bound to the Triton implementation as on an NVIDIA GPU.

launcher() calls the public entry points the way SGLang 0.5.23's production callers do on CUDA:
  apply_rotary_embedding
      multimodal_gen/runtime/layers/rotary_embedding/utils.py _apply_rotary_emb(x, cos, sin,
      is_neox_style=False, interleaved) -> apply_rotary_embedding(x, cos, sin, interleaved)
      (HunyuanVideo passes interleaved=False), a Python bool.
  apply_ltx2_split_rotary_emb
      multimodal_gen/runtime/models/dits/ltx_2.py apply_split_rotary_emb ->
      apply_ltx2_split_rotary_emb(x, cos, sin) (bf16, x contiguous, cos/sin 4-D views).

The standard kernel is autotuned: its first call (made eagerly in launcher(), before any capture)
times the five configs and keeps one per key (num_heads, head_size). The adapter prints the config
the autotuner kept to stderr ("fidelity-note: ... best_config ..."), which `kpilot fidelity` passes
through to its log, so the baseline's std_config() rule can be set to what the H200 picked.
"""

import importlib.util
import os
import sys
import types

FILES = [
    "sglang/kernels/ops/diffusion/rope/rotary_triton.py",
    "sglang/kernels/ops/diffusion/rope/ltx2_rotary_triton.py",
    "sglang/kernels/ops/diffusion/common/platform.py",
]

_STD = None  # rotary_triton module
_LTX = None  # ltx2_rotary_triton module
_REPORTED = set()

_PACKAGES = [
    "sglang",
    "sglang.kernels",
    "sglang.kernels.ops",
    "sglang.kernels.ops.diffusion",
    "sglang.kernels.ops.diffusion.common",
    "sglang.kernels.ops.diffusion.rope",
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


def _modname(rel):
    return rel[: -len(".py")].replace("/", ".")


def load(upstream_root: str) -> None:
    """Import upstream's two kernel modules from the unpacked wheel at upstream_root (the folder
    holding sglang/)."""
    global _STD, _LTX
    root = os.path.abspath(upstream_root)
    for pkg in _PACKAGES:
        _package(pkg, os.path.join(root, *pkg.split(".")))

    # Stubs for what the GPU machine does not have.
    for pkg in ("sglang.multimodal_gen", "sglang.multimodal_gen.runtime"):
        _package(pkg, None)
    platforms = types.ModuleType("sglang.multimodal_gen.runtime.platforms")
    platforms.current_platform = _CudaPlatform()
    sys.modules[platforms.__name__] = platforms

    # The real wheel files, dependencies first.
    _load_file(_modname(FILES[2]), os.path.join(root, FILES[2]))
    _STD = _load_file(_modname(FILES[0]), os.path.join(root, FILES[0]))
    _LTX = _load_file(_modname(FILES[1]), os.path.join(root, FILES[1]))


def _report_best_config(x, cos):
    """Print, once per autotune key, the config Triton's autotuner kept (stderr, to the log)."""
    kern = _STD._rotary_embedding_kernel
    heads, head_size = (x.shape[-2], x.shape[-1])
    key = (int(heads), int(head_size), str(x.dtype), str(cos.dtype))
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    best = getattr(kern, "best_config", None)
    print(
        f"fidelity-note: apply_rotary_embedding num_heads={heads} head_size={head_size} "
        f"x={x.dtype} cos={cos.dtype}: autotuner best_config = {best}",
        file=sys.stderr,
        flush=True,
    )


def launcher(entry: str, t: dict, s: dict):
    """A zero-argument callable running upstream's production entry point once on torch's current
    CUDA stream; it returns {output tensor name: tensor upstream computed}.

    The callable is tried once here, eagerly: a row upstream rejects (its wrapper raises) becomes
    NotImplementedError instead of an exception in the middle of a graph capture, and Triton
    compiles (and autotunes) before any capture starts."""
    run = _launcher(entry, t, s)
    try:
        run()
    except Exception as e:  # ValueError, RuntimeError, AssertionError, triton CompilationError
        raise NotImplementedError(f"upstream raises {type(e).__name__}: {e}") from e
    if entry == "apply_rotary_embedding":
        _report_best_config(t["x"], t["cos"])
    return run


def _launcher(entry, t, s):
    if _STD is None or _LTX is None:
        raise RuntimeError("adapter.load() was not called")

    if entry == "apply_rotary_embedding":
        x, cos, sin = t["x"], t["cos"], t["sin"]
        interleaved = bool(s["interleaved"])

        def run():
            return {"out": _STD.apply_rotary_embedding(x, cos, sin, interleaved)}

        return run

    if entry == "apply_ltx2_split_rotary_emb":
        x, cos, sin = t["x"], t["cos"], t["sin"]

        def run():
            return {"out": _LTX.apply_ltx2_split_rotary_emb(x, cos, sin)}

        return run

    raise NotImplementedError(f"unknown entry {entry}")
