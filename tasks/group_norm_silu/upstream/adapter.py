"""kpilot fidelity adapter for tasks/group_norm_silu: SGLang 0.5.23's fused GroupNorm + SiLU.

Loads sglang/kernels/ops/diffusion/norm/group_norm_silu.py (apply_group_norm_silu, the dispatcher
HunyuanVAE calls) and sglang/kernels/ops/diffusion/norm/group_norm_silu_triton.py (the Triton op it
forwards to) straight from the unpacked wheel. What the GPU machine lacks is stubbed in
sys.modules, nothing more:

  * the package __init__ files on the way (sglang, sglang.kernels, ...): empty packages whose
    __path__ points into the wheel, so the real __init__ side effects do not run;
  * sglang.srt.utils.custom_op.register_custom_op: returns the decorated function itself. The real
    one (srt/utils/custom_op.py) needs sglang.srt.utils.common to register a torch op; for a plain
    eager call (no compile, no grad, plain CUDA tensors) its wrapper calls the function directly,
    which is what the stub does.

launcher() calls the production entry point the way hunyuanvae.py does on CUDA:
_apply_group_norm_silu -> apply_group_norm_silu(hidden_states, norm, nonlinearity) with
norm = nn.GroupNorm(num_groups, C, eps, affine=True) holding the row's weight and bias and
nonlinearity = nn.SiLU(), under torch.no_grad() (the VAE decodes in inference mode). x is passed as
the row lays it out (channels_last_3d rows included): upstream's own x.contiguous() copy is part of
what it costs.
"""

import importlib.util
import os
import sys
import types

FILES = [
    "sglang/kernels/ops/diffusion/norm/group_norm_silu.py",
    "sglang/kernels/ops/diffusion/norm/group_norm_silu_triton.py",
]

_APPLY = None  # group_norm_silu module (apply_group_norm_silu)

_PACKAGES = [
    "sglang",
    "sglang.kernels",
    "sglang.kernels.ops",
    "sglang.kernels.ops.diffusion",
    "sglang.kernels.ops.diffusion.common",
    "sglang.kernels.ops.diffusion.norm",
]


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
    """Import upstream's modules from the unpacked wheel at upstream_root (the folder holding
    sglang/)."""
    global _APPLY
    root = os.path.abspath(upstream_root)
    for pkg in _PACKAGES:
        _package(pkg, os.path.join(root, *pkg.split(".")))
    for pkg in ("sglang.srt", "sglang.srt.utils"):
        _package(pkg, None)
    custom_op = types.ModuleType("sglang.srt.utils.custom_op")
    custom_op.register_custom_op = _register_custom_op
    sys.modules[custom_op.__name__] = custom_op
    # The Triton module first: apply_group_norm_silu imports it by its package path on each call.
    _load_file(FILES[1][: -len(".py")].replace("/", "."), os.path.join(root, FILES[1]))
    _APPLY = _load_file(FILES[0][: -len(".py")].replace("/", "."), os.path.join(root, FILES[0]))


def launcher(entry: str, t: dict, s: dict):
    """A zero-argument callable running upstream's production entry point once on torch's current
    CUDA stream; it returns {output tensor name: tensor upstream computed}.

    The callable is tried once here, eagerly: a row upstream rejects (its eager fallback raises)
    becomes NotImplementedError instead of an exception in the middle of a graph capture, and
    Triton compiles before any capture starts."""
    run = _launcher(entry, t, s)
    try:
        run()
    except Exception as e:  # RuntimeError, ValueError from F.group_norm; triton CompilationError
        raise NotImplementedError(f"upstream raises {type(e).__name__}: {e}") from e
    return run


def _launcher(entry, t, s):
    import torch
    from torch import nn

    if _APPLY is None:
        raise RuntimeError("adapter.load() was not called")
    if entry != "group_norm_silu":
        raise NotImplementedError(f"unknown entry {entry}")
    x, weight, bias = t["x"], t["weight"], t["bias"]
    groups = int(s["num_groups"])
    eps = float(s["eps"])
    if x.dim() < 2 or x.shape[1] % groups != 0:
        # nn.GroupNorm's constructor raises for these; the call never reaches the kernel.
        raise NotImplementedError(f"nn.GroupNorm({groups}, C) cannot be built for x {tuple(x.shape)}")
    norm = nn.GroupNorm(groups, x.shape[1], eps=eps, affine=True, device=x.device, dtype=x.dtype)
    with torch.no_grad():
        norm.weight = nn.Parameter(weight, requires_grad=False)
        norm.bias = nn.Parameter(bias, requires_grad=False)
    act = nn.SiLU()

    def run():
        with torch.no_grad():
            return {"y": _APPLY.apply_group_norm_silu(x, norm, act)}

    return run
