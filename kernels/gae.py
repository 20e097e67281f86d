"""Token-level returns: GAE (PPO with a critic) and REINFORCE++ (discounted returns, whitened).

Both are a backward scan over time, one sequence per row of ``[B, T]`` tensors. Positions with
``mask == 0`` (prompt or padding) are *transparent*: they get advantage 0 and the scan carries
its state across them, so a value or reward there never leaks into the response.

GAE, for the response positions t < t' (t' the next response position)::

    delta_t = r_t + gamma * V_t' - V_t          (V after the last response token is 0)
    A_t     = delta_t + gamma * lam * A_t'
    returns_t = A_t + V_t                        (computed before whitening)

REINFORCE++ is the same scan with V = 0 and lam = 1: ``G_t = r_t + gamma * G_t'``, then the
returns are whitened over all response tokens of the batch to give the advantages.

Whitening (``masked_whiten``) uses the mean and *unbiased* variance over the masked tokens of
the tensor passed in: call it on the whole rollout batch, before splitting into micro-batches.
"""

from __future__ import annotations

import torch

from ._impl import HAS_TRITON, resolve_impl, tl, triton


def _check(name: str, mask_BT: torch.Tensor, **tensors: torch.Tensor):
    if mask_BT.dim() != 2:
        raise ValueError(f"{name}: mask must be [B, T], got shape {tuple(mask_BT.shape)}")
    for key, t in tensors.items():
        if t.shape != mask_BT.shape:
            raise ValueError(
                f"{name}: {key} has shape {tuple(t.shape)} but mask has {tuple(mask_BT.shape)}; pass [B, T] tensors "
                "aligned with the response mask"
            )


def _dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def masked_whiten(x_BT: torch.Tensor, mask_BT: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over masked tokens (unbiased var); 0 where mask is 0."""
    m = mask_BT.to(x_BT.dtype)
    n = m.sum()
    mean = (x_BT * m).sum() / n.clamp(min=1)
    var = (((x_BT - mean) * m) ** 2).sum() / (n - 1).clamp(min=1)
    return (x_BT - mean) * torch.rsqrt(var + eps) * m


# ----------------------------------------------------------------------------- references


def gae_advantages_reference(rewards_BT, values_BT, mask_BT, gamma: float, lam: float, whiten: bool = True):
    """One sequence and one step at a time, in float64 arithmetic via Python floats."""
    _check("gae_advantages", mask_BT, rewards=rewards_BT, values=values_BT)
    dt = _dtype(rewards_BT)
    B, T = mask_BT.shape
    adv = torch.zeros(B, T, dtype=torch.float64)
    r, v, m = rewards_BT.double().cpu(), values_BT.double().cpu(), mask_BT.double().cpu()
    for b in range(B):
        next_v, last_a = 0.0, 0.0
        for t in reversed(range(T)):
            if m[b, t] == 0:
                continue
            delta = float(r[b, t]) + gamma * next_v - float(v[b, t])
            last_a = delta + gamma * lam * last_a
            adv[b, t] = last_a
            next_v = float(v[b, t])
    ret = (adv + v) * m
    if whiten:
        adv = masked_whiten(adv, m)
    return adv.to(dt).to(mask_BT.device), ret.to(dt).to(mask_BT.device)


def reinforce_pp_advantages_reference(rewards_BT, mask_BT, gamma: float = 1.0, whiten: bool = True):
    """REINFORCE++ oracle: discounted returns per sequence, then batch whitening."""
    _check("reinforce_pp_advantages", mask_BT, rewards=rewards_BT)
    dt = _dtype(rewards_BT)
    B, T = mask_BT.shape
    ret = torch.zeros(B, T, dtype=torch.float64)
    r, m = rewards_BT.double().cpu(), mask_BT.double().cpu()
    for b in range(B):
        g = 0.0
        for t in reversed(range(T)):
            if m[b, t] == 0:
                continue
            g = float(r[b, t]) + gamma * g
            ret[b, t] = g
    adv = masked_whiten(ret, m) if whiten else ret
    return adv.to(dt).to(mask_BT.device), ret.to(dt).to(mask_BT.device)


# ----------------------------------------------------------------------------- torch path


def _torch_scan(r_BT, v_BT, m_BT, gamma, lam):
    """Vectorised over B, sequential over T, on time-major copies so every step reads contiguous rows."""
    B, T = m_BT.shape
    r_TB = r_BT.T.contiguous()
    v_TB = v_BT.T.contiguous()
    keep_TB = (m_BT > 0).T.contiguous()
    adv_TB = torch.zeros(T, B, dtype=r_BT.dtype, device=r_BT.device)
    next_v = torch.zeros(B, dtype=r_BT.dtype, device=r_BT.device)
    last_a = torch.zeros_like(next_v)
    a = torch.empty_like(next_v)
    gl = gamma * lam
    for t in range(T - 1, -1, -1):
        k = keep_TB[t]
        torch.add(r_TB[t], next_v, alpha=gamma, out=a)
        a.sub_(v_TB[t]).add_(last_a, alpha=gl)
        torch.where(k, a, last_a, out=last_a)
        torch.where(k, v_TB[t], next_v, out=next_v)
        torch.where(k, a, adv_TB[t], out=adv_TB[t])
    return adv_TB.T.contiguous()


if HAS_TRITON:

    @triton.jit
    def _scan_kernel(
        r_ptr, v_ptr, m_ptr, adv_ptr, ret_ptr, B, T, gamma, gl,
        HAS_V: tl.constexpr, BLOCK_B: tl.constexpr,
    ):
        # One lane per sequence; the time loop is sequential, as the recurrence demands.
        rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
        ok = rows < B
        base = rows.to(tl.int64) * T
        next_v = tl.zeros((BLOCK_B,), tl.float32)
        last_a = tl.zeros((BLOCK_B,), tl.float32)
        for i in range(0, T):
            t = T - 1 - i
            keep = (tl.load(m_ptr + base + t, mask=ok, other=0.0) > 0) & ok
            r = tl.load(r_ptr + base + t, mask=ok, other=0.0).to(tl.float32)
            if HAS_V:
                v = tl.load(v_ptr + base + t, mask=ok, other=0.0).to(tl.float32)
            else:
                v = tl.zeros((BLOCK_B,), tl.float32)
            a = r + gamma * next_v - v + gl * last_a
            last_a = tl.where(keep, a, last_a)
            next_v = tl.where(keep, v, next_v)
            tl.store(adv_ptr + base + t, tl.where(keep, a, 0.0), mask=ok)
            tl.store(ret_ptr + base + t, tl.where(keep, a + v, 0.0), mask=ok)


def _triton_scan(r_BT, v_BT, m_BT, gamma, lam):
    B, T = m_BT.shape
    r = r_BT.contiguous()
    m = m_BT.to(torch.float32).contiguous()
    v = v_BT.contiguous() if v_BT is not None else r
    adv = torch.empty(B, T, dtype=torch.float32, device=r.device)
    ret = torch.empty_like(adv)
    if B and T:
        block = 64
        _scan_kernel[(triton.cdiv(B, block),)](
            r, v, m, adv, ret, B, T, float(gamma), float(gamma * lam), HAS_V=v_BT is not None, BLOCK_B=block
        )
    return adv, ret


# ----------------------------------------------------------------------------- public


def gae_advantages(
    rewards_BT: torch.Tensor,
    values_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 1.0,
    whiten: bool = True,
    impl: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over response tokens -> (advantages [B, T], returns [B, T]); padding positions give 0.

    ``returns`` (the critic's target) are taken before whitening; ``whiten=True`` normalises the
    advantages over all masked tokens of this batch (PPO practice). Not differentiable.
    """
    _check("gae_advantages", mask_BT, rewards=rewards_BT, values=values_BT)
    which = resolve_impl(impl, rewards_BT.device, "gae_advantages")
    if which == "reference":
        return gae_advantages_reference(rewards_BT, values_BT, mask_BT, gamma, lam, whiten)
    dt = _dtype(rewards_BT)
    m = mask_BT.detach().to(dt)
    if which == "triton":
        adv, ret = _triton_scan(rewards_BT.detach(), values_BT.detach(), m, gamma, lam)
    else:
        r, v = rewards_BT.detach().to(dt), values_BT.detach().to(dt)
        adv = _torch_scan(r, v, m, gamma, lam)
        ret = (adv + v) * m
    if whiten:
        adv = masked_whiten(adv, m.to(adv.dtype))
    return adv, ret


def reinforce_pp_advantages(
    rewards_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    gamma: float = 1.0,
    whiten: bool = True,
    impl: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE++ -> (advantages [B, T], returns [B, T]).

    Token rewards are usually zero except the sequence reward on the last response token
    (a KL penalty per token may be added by the caller). Returns are discounted sums over the
    later response tokens; advantages are the returns whitened over the batch's response tokens.
    """
    _check("reinforce_pp_advantages", mask_BT, rewards=rewards_BT)
    which = resolve_impl(impl, rewards_BT.device, "reinforce_pp_advantages")
    if which == "reference":
        return reinforce_pp_advantages_reference(rewards_BT, mask_BT, gamma, whiten)
    dt = _dtype(rewards_BT)
    m = mask_BT.detach().to(dt)
    if which == "triton":
        _, ret = _triton_scan(rewards_BT.detach(), None, m, gamma, 1.0)
    else:
        r = rewards_BT.detach().to(dt)
        ret = _torch_scan(r, torch.zeros_like(r), m, gamma, 1.0)
    adv = masked_whiten(ret, m.to(ret.dtype)) if whiten else ret
    return adv, ret
