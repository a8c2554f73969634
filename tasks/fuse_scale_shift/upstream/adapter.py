"""kpilot fidelity adapter for tasks/fuse_scale_shift: SGLang 0.5.23's Triton scale_shift kernels.

Loads sglang/kernels/ops/diffusion/modulate/scale_shift_triton.py (and the two small wheel files
it imports that need only torch/triton) straight from the unpacked wheel. What the GPU machine
lacks is stubbed in sys.modules, nothing more:

  * the package __init__ files on the way (sglang, sglang.kernels, ...): empty packages whose
    __path__ points into the wheel, so the real __init__ side effects (registry, heavy imports)
    do not run;
  * sglang.multimodal_gen.runtime.platforms.current_platform: a CUDA platform (is_cuda() true,
    every other is_*() false), which is what common/platform.py asks;
  * sglang.srt.utils.is_gfx1250_supported: False (an AMD gfx1250 check; false on NVIDIA).

launcher() calls the public entry points the way SGLang 0.5.23's production callers do on CUDA:
  fuse_scale_shift_kernel
      multimodal_gen/runtime/layers/elementwise.py MulAdd.forward_cuda(a, b, c, k=0)
      -> fuse_scale_shift_kernel(a, b, c, scale_constant=k), k a Python int.
  fuse_[residual_]layernorm_scale_shift_gate_select01_kernel
      multimodal_gen/runtime/layers/fused_scale_shift_gate.py
      FusedLayerNormScaleShiftGateSelect01.forward_cuda /
      FusedResidualLayerNormScaleShiftGateSelect01.forward_cuda: x, index (and residual,
      residual_gate) made contiguous if they are not, the six modulation tensors .contiguous(),
      everything passed by keyword.
"""

import importlib.util
import os
import sys
import types

FILES = [
    "sglang/kernels/ops/diffusion/modulate/scale_shift_triton.py",
    "sglang/kernels/numerics.py",
    "sglang/kernels/ops/diffusion/common/platform.py",
    "sglang/kernels/ops/diffusion/common/fallback_torch.py",
]

_MOD = None  # the loaded scale_shift_triton module

_PACKAGES = [
    "sglang",
    "sglang.kernels",
    "sglang.kernels.ops",
    "sglang.kernels.ops.diffusion",
    "sglang.kernels.ops.diffusion.common",
    "sglang.kernels.ops.diffusion.modulate",
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


def load(upstream_root: str) -> None:
    """Import upstream's kernel module from the unpacked wheel at upstream_root (the folder
    holding sglang/)."""
    global _MOD
    root = os.path.abspath(upstream_root)
    for pkg in _PACKAGES:
        _package(pkg, os.path.join(root, *pkg.split(".")))

    # Stubs for what the GPU machine does not have.
    for pkg in ("sglang.multimodal_gen", "sglang.multimodal_gen.runtime", "sglang.srt"):
        _package(pkg, None)
    platforms = types.ModuleType("sglang.multimodal_gen.runtime.platforms")
    platforms.current_platform = _CudaPlatform()
    sys.modules[platforms.__name__] = platforms
    srt_utils = types.ModuleType("sglang.srt.utils")
    srt_utils.is_gfx1250_supported = lambda: False
    sys.modules[srt_utils.__name__] = srt_utils

    # The real wheel files, dependencies first.
    for rel in FILES[1:]:
        name = rel[: -len(".py")].replace("/", ".")
        _load_file(name, os.path.join(root, rel))
    _MOD = _load_file(FILES[0][: -len(".py")].replace("/", "."), os.path.join(root, FILES[0]))


def _scale_constant(v):
    # MulAdd passes k as a Python int (default 0); a constexpr int and a float give the same
    # Triton type here, but the int is what production passes.
    return int(v) if float(v).is_integer() else float(v)


def launcher(entry: str, t: dict, s: dict):
    """A zero-argument callable running upstream's production entry point once on torch's current
    CUDA stream; it returns {output tensor name: tensor upstream computed}.

    The callable is tried once here, eagerly: a row upstream rejects (its wrapper raises, e.g. a
    shift that does not broadcast to x) becomes NotImplementedError instead of an exception in the
    middle of a graph capture, and Triton compiles before any capture starts."""
    run = _launcher(entry, t, s)
    try:
        run()
    except (ValueError, RuntimeError, AssertionError, TypeError, IndexError) as e:
        raise NotImplementedError(f"upstream raises {type(e).__name__}: {e}") from e
    return run


def _launcher(entry, t, s):
    if _MOD is None:
        raise RuntimeError("adapter.load() was not called")
    m = _MOD

    if entry == "fuse_scale_shift_kernel":
        x, scale, shift = t["x"], t["scale"], t["shift"]
        k = _scale_constant(s["scale_constant"])
        scalar = lambda v: v.dim() == 0 or (v.dim() == 1 and v.numel() == 1)
        if scale.dim() != 4 and scalar(scale) and scalar(shift):
            raise NotImplementedError(
                "scale and shift both scalar: upstream reads .any() back to the host and may "
                "call output.copy_(x); a host sync is not CUDA-graph capturable"
            )

        def run():
            return {"out": m.fuse_scale_shift_kernel(x, scale, shift, scale_constant=k)}

        return run

    if entry in (
        "fuse_layernorm_scale_shift_gate_select01_kernel",
        "fuse_residual_layernorm_scale_shift_gate_select01_kernel",
    ):
        resid = entry.startswith("fuse_residual")
        eps = float(s["eps"])
        x, index = t["x"], t["index"]
        if not x.is_contiguous():
            x = x.contiguous()
        if not index.is_contiguous():
            index = index.contiguous()
        mods = {n: t[n] for n in ("scale0", "shift0", "gate0", "scale1", "shift1", "gate1")}
        weight, bias = t.get("weight"), t.get("bias")

        if not resid:

            def run():
                out, gate_out = m.fuse_layernorm_scale_shift_gate_select01_kernel(
                    x,
                    weight=weight,
                    bias=bias,
                    **{n: v.contiguous() for n, v in mods.items()},
                    index=index,
                    eps=eps,
                )
                return {"out": out, "gate_out": gate_out}

            return run

        residual, residual_gate = t["residual"], t["residual_gate"]
        if not residual.is_contiguous():
            residual = residual.contiguous()
        if not residual_gate.is_contiguous():
            residual_gate = residual_gate.contiguous()

        def run():
            out, residual_out, gate_out = m.fuse_residual_layernorm_scale_shift_gate_select01_kernel(
                x,
                residual=residual,
                residual_gate=residual_gate,
                weight=weight,
                bias=bias,
                **{n: v.contiguous() for n, v in mods.items()},
                index=index,
                eps=eps,
            )
            return {"out": out, "residual_out": residual_out, "gate_out": gate_out}

        return run

    raise NotImplementedError(f"unknown entry {entry}")
