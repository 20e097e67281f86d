"""Matrix products of the torch path, through oneDNN on CPU when torch ships it.

On our CPU machines (AMD EPYC, AVX-512, 2 threads) torch's fp32 ``torch.mm`` goes to MKL,
which ran 135-175 GFLOP/s on the log-prob tiles (8192 x 1024 x 2048), while oneDNN's fp32
inner product (``torch.ops.mkldnn._linear_pointwise``, the op torch.compile's CPU backend emits
for ``nn.Linear``) ran 260-370 GFLOP/s on the same operands; benchmarks/bench_logprob.py
compares the log-prob op both ways (torch-chunked vs torch-chunked-mm). Both accumulate in
fp32; results differ from MKL's only by summation order.

``IFRL_CPU_GEMM=torch`` forces ``torch.mm`` everywhere (for comparisons); CUDA tensors and
non-fp32 dtypes always use ``torch.mm``.
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


def onednn_for(device: torch.device, dtype: torch.dtype) -> bool:
    """True when products of ``dtype`` tensors on ``device`` go through oneDNN here."""
    return device.type == "cpu" and dtype == torch.float32 and onednn_available()


def mm_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` (a new tensor) for a [M, K] and b [N, K] (any strides)."""
    if onednn_for(a.device, a.dtype) and b.dtype == a.dtype and a.numel() and b.shape[0]:
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
