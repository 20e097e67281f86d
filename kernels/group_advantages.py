"""Outcome advantages from groups of samples of one prompt: GRPO, Dr.GRPO, RLOO.

Rows of a group are contiguous: ``rewards[g * G:(g + 1) * G]`` are the G samples of prompt g.

* ``grpo``:   (r - mean) / (std + eps), std unbiased (divides by G - 1);
* ``drgrpo``: r - mean (no std division: Dr.GRPO removes the difficulty bias);
* ``rloo``:   r - mean of the *other* G - 1 rewards = G / (G - 1) * (r - mean).

``broadcast_to_tokens`` spreads a per-sequence advantage over the response tokens.
"""

from __future__ import annotations

import torch

from ._impl import HAS_TRITON, resolve_impl, tl, triton

ESTIMATORS = ("grpo", "drgrpo", "rloo")


def _check(rewards_B: torch.Tensor, group_size: int, estimator: str):
    if rewards_B.dim() != 1:
        raise ValueError(
            f"group_advantages: rewards must be 1-D [B], got shape {tuple(rewards_B.shape)}; flatten it (rows of a "
            "group contiguous)"
        )
    if estimator not in ESTIMATORS:
        raise ValueError(f"group_advantages: estimator={estimator!r} is unknown; use one of {ESTIMATORS}")
    if not isinstance(group_size, int) or group_size < 2:
        raise ValueError(
            f"group_advantages: group_size={group_size!r} must be an int >= 2 (a baseline needs other samples); "
            "sample n >= 2 responses per prompt"
        )
    if rewards_B.shape[0] % group_size:
        raise ValueError(
            f"group_advantages: B={rewards_B.shape[0]} is not a multiple of group_size={group_size}; "
            "keep whole groups together"
        )


def _out_dtype(r: torch.Tensor) -> torch.dtype:
    return torch.float64 if r.dtype == torch.float64 else torch.float32


def group_advantages_reference(rewards_B: torch.Tensor, group_size: int, estimator: str = "grpo", eps: float = 1e-6):
    """One group at a time, straight from the definitions (the test oracle)."""
    _check(rewards_B, group_size, estimator)
    r = rewards_B.to(_out_dtype(rewards_B))
    out = torch.empty_like(r)
    for g0 in range(0, r.shape[0], group_size):
        grp = r[g0 : g0 + group_size]
        mean = grp.mean()
        if estimator == "grpo":
            out[g0 : g0 + group_size] = (grp - mean) / (grp.std(unbiased=True) + eps)
        elif estimator == "drgrpo":
            out[g0 : g0 + group_size] = grp - mean
        else:
            for i in range(group_size):
                others = torch.cat([grp[:i], grp[i + 1 :]])
                out[g0 + i] = grp[i] - others.mean()
    return out


def _torch_group_advantages(rewards_B, group_size, estimator, eps):
    r_GS = rewards_B.to(_out_dtype(rewards_B)).view(-1, group_size)
    mean_G = r_GS.mean(1, keepdim=True)
    d_GS = r_GS - mean_G
    if estimator == "grpo":
        std_G = torch.sqrt((d_GS * d_GS).sum(1, keepdim=True) / (group_size - 1))
        return (d_GS / (std_G + eps)).reshape(-1)
    if estimator == "drgrpo":
        return d_GS.reshape(-1)
    return (d_GS * (group_size / (group_size - 1))).reshape(-1)


if HAS_TRITON:

    @triton.jit
    def _group_adv_kernel(
        r_ptr, out_ptr, num_groups, G, eps,
        EST: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr,
    ):
        pid = tl.program_id(0)
        rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
        cols = tl.arange(0, BLOCK_G)
        ok = (rows[:, None] < num_groups) & (cols[None, :] < G)
        offs = rows[:, None].to(tl.int64) * G + cols[None, :]
        r = tl.load(r_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        mean = tl.sum(r, axis=1) / G
        d = tl.where(ok, r - mean[:, None], 0.0)
        if EST == 0:
            std = tl.sqrt(tl.sum(d * d, axis=1) / (G - 1))
            adv = d / (std[:, None] + eps)
        elif EST == 1:
            adv = d
        else:
            adv = d * (G / (G - 1.0))
        tl.store(out_ptr + offs, adv, mask=ok)


def _triton_group_advantages(rewards_B, group_size, estimator, eps):
    r = rewards_B.contiguous()
    out = torch.empty(r.shape, dtype=torch.float32, device=r.device)
    num_groups = r.shape[0] // group_size
    if num_groups == 0:
        return out
    block_g = triton.next_power_of_2(group_size)
    block_r = max(1, min(64, 4096 // block_g))
    _group_adv_kernel[(triton.cdiv(num_groups, block_r),)](
        r, out, num_groups, group_size, float(eps),
        EST=ESTIMATORS.index(estimator), BLOCK_R=block_r, BLOCK_G=block_g,
    )
    return out


def group_advantages(
    rewards_B: torch.Tensor,
    group_size: int,
    estimator: str = "grpo",
    eps: float = 1e-6,
    impl: str | None = None,
) -> torch.Tensor:
    """Per-sequence advantages [B] (float32; float64 for float64 rewards on the torch path).

    ``group_size`` consecutive rows form one group. Not differentiable (rewards are data).
    """
    _check(rewards_B, group_size, estimator)
    which = resolve_impl(impl, rewards_B.device, "group_advantages")
    rewards_B = rewards_B.detach()
    if which == "reference":
        return group_advantages_reference(rewards_B, group_size, estimator, eps)
    if which == "triton":
        return _triton_group_advantages(rewards_B, group_size, estimator, eps)
    return _torch_group_advantages(rewards_B, group_size, estimator, eps)


def broadcast_to_tokens(adv_B: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Token-level advantages [B, T]: each response token gets its sequence's advantage, padding 0."""
    if adv_B.dim() != 1 or mask_BT.dim() != 2 or mask_BT.shape[0] != adv_B.shape[0]:
        raise ValueError(
            f"broadcast_to_tokens: need adv [B] and mask [B, T] with the same B; got {tuple(adv_B.shape)} and "
            f"{tuple(mask_BT.shape)}"
        )
    return adv_B[:, None] * mask_BT.to(adv_B.dtype)
