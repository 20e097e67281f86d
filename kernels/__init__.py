"""Drop-in Triton kernels with PyTorch references (import as ``ifrl.kernels``).

This folder depends on torch (and triton when present) only; it imports nothing from ifrl.
Every op has ``<op>_reference`` (plain PyTorch, the test oracle), a PyTorch runtime path (the
CPU path) and a Triton path (CUDA); ``impl=None`` picks by device, ``impl="reference" |
"torch" | "triton"`` forces one.
"""

from ._impl import HAS_TRITON, IMPLS, resolve_impl
from .fused_linear_logprobs import IGNORE_INDEX, fused_linear_logprobs, fused_linear_logprobs_reference
from .gae import (
    gae_advantages,
    gae_advantages_reference,
    masked_whiten,
    reinforce_pp_advantages,
    reinforce_pp_advantages_reference,
)
from .group_advantages import ESTIMATORS, broadcast_to_tokens, group_advantages, group_advantages_reference
from .policy_loss import AGGS, KL_KINDS, policy_loss, policy_loss_reference

__all__ = [
    "AGGS",
    "ESTIMATORS",
    "HAS_TRITON",
    "IGNORE_INDEX",
    "IMPLS",
    "KL_KINDS",
    "broadcast_to_tokens",
    "fused_linear_logprobs",
    "fused_linear_logprobs_reference",
    "gae_advantages",
    "gae_advantages_reference",
    "group_advantages",
    "group_advantages_reference",
    "masked_whiten",
    "policy_loss",
    "policy_loss_reference",
    "reinforce_pp_advantages",
    "reinforce_pp_advantages_reference",
    "resolve_impl",
]
