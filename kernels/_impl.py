"""Choosing an implementation: ``reference``, ``torch`` or ``triton``.

Automatic choice: Triton when the tensors live on CUDA and Triton imports, otherwise the
PyTorch runtime path. ``triton`` on CPU tensors is allowed only under ``TRITON_INTERPRET=1``
(the Triton interpreter, used by the tests), because compiled Triton needs a GPU.
"""

from __future__ import annotations

import os

import torch

IMPLS = ("reference", "torch", "triton")

try:  # Triton is optional: CPU boxes may run without it.
    import triton  # noqa: F401
    import triton.language as tl  # noqa: F401

    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    HAS_TRITON = False


def triton_interpreting() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_impl(impl: str | None, device: torch.device, op: str) -> str:
    """Return the implementation to run for ``op`` on ``device``.

    ``impl=None`` picks Triton on CUDA (when installed) and the PyTorch path elsewhere.
    """
    if impl is None:
        return "triton" if (device.type == "cuda" and HAS_TRITON) else "torch"
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl={impl!r} is unknown; use one of {IMPLS} or None for automatic")
    if impl == "triton":
        if not HAS_TRITON:
            raise ValueError(f"{op}: impl='triton' but triton is not installed; pip install triton or use impl='torch'")
        if device.type != "cuda" and not triton_interpreting():
            raise ValueError(
                f"{op}: impl='triton' on a {device.type} tensor needs CUDA; move the tensors to a GPU, "
                "set TRITON_INTERPRET=1 before importing (slow, for tests), or use impl='torch'"
            )
    return impl
