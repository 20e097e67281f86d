"""Matrix products of the torch path, through oneDNN on CPU when torch ships it.

On our CPU machines (AMD EPYC, AVX-512, 2 threads) torch's fp32 ``torch.mm`` goes to MKL,
which runs ~85 GFLOP/s on the log-prob tiles, while oneDNN's fp32 inner product
(``torch.ops.mkldnn._linear_pointwise``, the op torch.compile's CPU backend emits for
``nn.Linear``) runs ~145 GFLOP/s on the same operands (benchmarks/bench_logprob.py reports
both). Both accumulate in fp32; results differ from MKL's only by summation order.

``IFRL_CPU_GEMM=torch`` forces ``torch.mm`` everywhere (for comparisons); CUDA tensors and
non-fp32 dtypes always use ``torch.mm``. All functions return a new tensor.
"""

from __future__ import annotations

import contextlib
import os

import torch

_ONEDNN: bool | None = None


def onednn_available() -> bool:
    """True when torch has oneDNN's linear op and ``IFRL_CPU_GEMM`` does not ask for torch.mm."""
    global _ONEDNN
    if _ONEDNN is None:
        ok = os.environ.get("IFRL_CPU_GEMM", "auto").lower() not in ("torch", "mkl", "off", "0")
        try:
            ok = ok and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        except Exception:  # pragma: no cover - depends on the torch build
            ok = False
        _ONEDNN = bool(ok)
    return _ONEDNN


def _onednn(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.device.type == "cpu" and a.dtype == torch.float32 and b.dtype == torch.float32
            and a.shape[0] > 0 and a.shape[1] > 0 and b.shape[0] > 0 and onednn_available())


def mm_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` for a [M, K] and b [N, K] (any strides)."""
    if _onednn(a, b):
        return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return a @ b.T


@contextlib.contextmanager
def torch_mm_only():
    """Within the block, every product here goes through ``torch.mm`` (benchmarks compare)."""
    global _ONEDNN
    before = onednn_available()
    _ONEDNN = False
    try:
        yield
    finally:
        _ONEDNN = before
