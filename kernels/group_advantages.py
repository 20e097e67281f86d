"""Outcome advantages from groups of samples of one prompt: GRPO, Dr.GRPO, RLOO.

Rows of a group are contiguous: ``rewards[g * G:(g + 1) * G]`` are the G samples of prompt g.

* ``grpo``:   (r - mean) / (std + eps), std unbiased (divides by G - 1);
* ``drgrpo``: r - mean (no std division: Dr.GRPO removes the difficulty bias);
* ``rloo``:   r - mean of the *other* G - 1 rewards = G / (G - 1) * (r - mean).

An optional sample mask ``valid_B`` (bool [B]) drops samples (e.g. a failed reward) from their
group: the statistics use the group's n_g valid members only (std over n_g - 1, the leave-one-out
mean over n_g - 1), invalid samples get advantage 0, and a group with n_g <= 1 gives 0 for grpo
and rloo (no baseline); drgrpo gives r - r = 0 there anyway.

``broadcast_to_tokens`` spreads a per-sequence advantage over the response tokens.
"""

from __future__ import annotations

import torch

from ._impl import HAS_TRITON, resolve_impl, tl, triton

ESTIMATORS = ("grpo", "drgrpo", "rloo")


def _check(rewards_B: torch.Tensor, group_size: int, estimator: str, valid_B: torch.Tensor | None = None):
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
    if valid_B is not None and (valid_B.shape != rewards_B.shape or valid_B.device != rewards_B.device):
        raise ValueError(
            f"group_advantages: valid_B has shape {tuple(valid_B.shape)} on {valid_B.device} but rewards have "
            f"{tuple(rewards_B.shape)} on {rewards_B.device}; pass one bool per sample, on the rewards' device"
        )


def _out_dtype(r: torch.Tensor) -> torch.dtype:
    return torch.float64 if r.dtype == torch.float64 else torch.float32


def group_advantages_reference(
    rewards_B: torch.Tensor, group_size: int, estimator: str = "grpo", eps: float = 1e-6, *, valid_B=None
):
    """One group at a time, straight from the definitions (the test oracle)."""
    _check(rewards_B, group_size, estimator, valid_B)
    r = rewards_B.to(_out_dtype(rewards_B))
    ok = [True] * r.shape[0] if valid_B is None else valid_B.to(torch.bool).tolist()
    out = torch.zeros_like(r)
    for g0 in range(0, r.shape[0], group_size):
        idx = [g0 + i for i in range(group_size) if ok[g0 + i]]
        if not idx or (len(idx) < 2 and estimator != "drgrpo"):
            continue  # no valid member, or no baseline for grpo / rloo: all zeros
        grp = r[idx]
        mean = grp.mean()
        if estimator == "grpo":
            out[idx] = (grp - mean) / (grp.std(unbiased=True) + eps)
        elif estimator == "drgrpo":
            out[idx] = grp - mean
        else:
            for k, i in enumerate(idx):
                others = torch.cat([grp[:k], grp[k + 1 :]])
                out[i] = grp[k] - others.mean()
    return out


def _torch_group_advantages(rewards_B, group_size, estimator, eps, valid_B=None):
    if valid_B is not None:
        return _torch_masked_group_advantages(rewards_B, group_size, estimator, eps, valid_B)
    r_GS = rewards_B.to(_out_dtype(rewards_B)).view(-1, group_size)
    mean_G = r_GS.mean(1, keepdim=True)
    d_GS = r_GS - mean_G
    if estimator == "grpo":
        std_G = torch.sqrt((d_GS * d_GS).sum(1, keepdim=True) / (group_size - 1))
        return (d_GS / (std_G + eps)).reshape(-1)
    if estimator == "drgrpo":
        return d_GS.reshape(-1)
    return (d_GS * (group_size / (group_size - 1))).reshape(-1)


def _torch_masked_group_advantages(rewards_B, group_size, estimator, eps, valid_B):
    v_GS = valid_B.to(torch.bool).view(-1, group_size)
    r_GS = torch.where(v_GS, rewards_B.to(_out_dtype(rewards_B)).view(-1, group_size), 0.0)
    vf_GS = v_GS.to(r_GS.dtype)
    cnt_G = vf_GS.sum(1, keepdim=True)
    mean_G = r_GS.sum(1, keepdim=True) / cnt_G.clamp(min=1)
    d_GS = (r_GS - mean_G) * vf_GS
    if estimator == "grpo":
        std_G = torch.sqrt((d_GS * d_GS).sum(1, keepdim=True) / (cnt_G - 1).clamp(min=1))
        adv_GS = d_GS / (std_G + eps)
    elif estimator == "drgrpo":
        return d_GS.reshape(-1)
    else:
        adv_GS = d_GS * (cnt_G / (cnt_G - 1).clamp(min=1))
    return torch.where(cnt_G > 1, adv_GS, 0.0).reshape(-1)


if HAS_TRITON:

    @triton.jit
    def _group_adv_kernel(
        r_ptr, v_ptr, out_ptr, num_groups, G, eps,
        EST: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr, HAS_VALID: tl.constexpr,
    ):
        pid = tl.program_id(0)
        rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
        cols = tl.arange(0, BLOCK_G)
        ok = (rows[:, None] < num_groups) & (cols[None, :] < G)
        offs = rows[:, None].to(tl.int64) * G + cols[None, :]
        if HAS_VALID:
            ok = ok & (tl.load(v_ptr + offs, mask=ok, other=0) != 0)
        r = tl.load(r_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        if HAS_VALID:
            cnt = tl.sum(ok.to(tl.float32), axis=1)
        else:
            cnt = tl.zeros((BLOCK_R,), tl.float32) + G
        mean = tl.sum(r, axis=1) / tl.maximum(cnt, 1.0)
        d = tl.where(ok, r - mean[:, None], 0.0)
        if EST == 0:
            std = tl.sqrt(tl.sum(d * d, axis=1) / tl.maximum(cnt - 1.0, 1.0))
            adv = d / (std[:, None] + eps)
        elif EST == 1:
            adv = d
        else:
            adv = d * (cnt / tl.maximum(cnt - 1.0, 1.0))[:, None]
        if EST != 1:
            adv = tl.where(cnt[:, None] > 1.0, adv, 0.0)
        tl.store(out_ptr + offs, adv, mask=(rows[:, None] < num_groups) & (cols[None, :] < G))


def _triton_group_advantages(rewards_B, group_size, estimator, eps, valid_B=None):
    r = rewards_B.contiguous()
    v = valid_B.to(torch.int8).contiguous() if valid_B is not None else r
    out = torch.empty(r.shape, dtype=torch.float32, device=r.device)
    num_groups = r.shape[0] // group_size
    if num_groups == 0:
        return out
    block_g = triton.next_power_of_2(group_size)
    block_r = max(1, min(64, 4096 // block_g))
    _group_adv_kernel[(triton.cdiv(num_groups, block_r),)](
        r, v, out, num_groups, group_size, float(eps),
        EST=ESTIMATORS.index(estimator), BLOCK_R=block_r, BLOCK_G=block_g, HAS_VALID=valid_B is not None,
    )
    return out


def group_advantages(
    rewards_B: torch.Tensor,
    group_size: int,
    estimator: str = "grpo",
    eps: float = 1e-6,
    *,
    valid_B: torch.Tensor | None = None,
    impl: str | None = None,
) -> torch.Tensor:
    """Per-sequence advantages [B] (float32; float64 for float64 rewards on the torch path).

    ``group_size`` consecutive rows form one group. ``valid_B`` (bool [B], optional) leaves
    samples out of their group's statistics and gives them 0 (module docstring). Not
    differentiable (rewards are data).
    """
    _check(rewards_B, group_size, estimator, valid_B)
    which = resolve_impl(impl, rewards_B.device, "group_advantages")
    rewards_B = rewards_B.detach()
    if which == "reference":
        return group_advantages_reference(rewards_B, group_size, estimator, eps, valid_B=valid_B)
    if which == "triton":
        return _triton_group_advantages(rewards_B, group_size, estimator, eps, valid_B)
    return _torch_group_advantages(rewards_B, group_size, estimator, eps, valid_B)


def broadcast_to_tokens(adv_B: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Token-level advantages [B, T]: each response token gets its sequence's advantage, padding 0."""
    if adv_B.dim() != 1 or mask_BT.dim() != 2 or mask_BT.shape[0] != adv_B.shape[0]:
        raise ValueError(
            f"broadcast_to_tokens: need adv [B] and mask [B, T] with the same B; got {tuple(adv_B.shape)} and "
            f"{tuple(mask_BT.shape)}"
        )
    return adv_B[:, None] * mask_BT.to(adv_B.dtype)
