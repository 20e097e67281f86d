"""Kernel tests: every path is compared with a float64 reference.

The top-level conftest sets TRITON_INTERPRET=1 when there is no GPU, so the Triton paths run
in the interpreter here; shapes stay tiny and awkward (not multiples of any block size).
"""

import pytest
import torch

from ifrl.kernels import HAS_TRITON

IMPLS = ["torch", "triton"] if HAS_TRITON else ["torch"]


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
