"""PPO clipped surrogate + KL-to-reference loss, fused, with metrics and no host syncs.

Per response token (mask 1)::

    ratio = exp(clamp(logp - old_logp, -20, 20))
    pg    = max(-A * ratio, -A * clamp(ratio, 1 - clip_low, 1 + clip_high))
    kl    = k1: logp - ref          k2: (logp - ref)^2 / 2
            k3: clamp(exp(ref - logp) - (ref - logp) - 1, -10, 10)    ("low_var_kl")
    l     = pg + kl_coef * kl

Aggregation is a weighted sum ``loss = sum_t w_t * l_t`` with

    token-mean:            w = mask / D_tok          D_tok = global_tokens or mask.sum()
    seq-mean-token-sum:    w = mask / D_seq          D_seq = global_seqs or B
    seq-mean-token-mean:   w = mask / (len_b * D_seq)

so that with *global* denominators (the token / sequence count of the whole optimiser batch,
over all micro-batches and ranks), the losses of the micro-batches **sum** to the full-batch
loss, and their gradients sum to its gradient. Without them the denominators are local.

Metrics (0-dim tensors, nothing leaves the device): ``pg_loss`` and ``kl`` use the same weights
as the loss (``loss = pg_loss + kl_coef * kl``); ``clipfrac`` (share of tokens where the
clipped branch is active) and ``approx_kl`` (mean of old_logp - logp) are token means over
D_tok, so they too sum over micro-batches when ``global_tokens`` is given.

Gradient flows to ``logp`` only: old_logp, ref_logp, advantages and mask are data.

``mask`` may hold float weights rather than 0/1: every path uses it as ``w_t = mask_t * row_w``.
Packed (flat) token streams with precomputed per-token weights ``w_N`` therefore use
``policy_loss(logp_N[None], ..., mask=w_N[None], agg="token-mean", global_tokens=1)``, which
gives ``loss = sum_t w_t * l_t`` (clipfrac / approx_kl become the same weighted sums).
"""

from __future__ import annotations

import torch

from ._impl import HAS_TRITON, resolve_impl, tl, triton

KL_KINDS = ("k1", "k2", "k3", None)
AGGS = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean")
RATIO_CLAMP = 20.0
K3_CLAMP = 10.0


def _check(logp, old_logp, ref_logp, advantages, mask, kl, kl_coef, agg, clip_low, clip_high):
    if logp.dim() != 2:
        raise ValueError(f"policy_loss: logp must be [B, T], got shape {tuple(logp.shape)}")
    named = {"old_logp": old_logp, "mask": mask}
    if ref_logp is not None:
        named["ref_logp"] = ref_logp
    if advantages.shape != (logp.shape[0],):  # per-sequence advantages are broadcast over tokens
        named["advantages"] = advantages
    for key, t in named.items():
        if t.shape != logp.shape:
            raise ValueError(
                f"policy_loss: {key} has shape {tuple(t.shape)} but logp has {tuple(logp.shape)}; pass [B, T] "
                "tensors (advantages may also be per-sequence, shape [B])"
            )
    if kl not in KL_KINDS:
        raise ValueError(f"policy_loss: kl={kl!r} is unknown; use one of {KL_KINDS}")
    if kl is not None and ref_logp is None:
        raise ValueError(f"policy_loss: kl={kl!r} needs ref_logp; pass the reference model's log-probs or kl=None")
    if agg not in AGGS:
        raise ValueError(f"policy_loss: agg={agg!r} is unknown; use one of {AGGS}")
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"policy_loss: clip_low={clip_low}, clip_high={clip_high} must be >= 0 (e.g. 0.2)")


def _denominators(mask_f, agg, global_tokens, global_seqs):
    """(per-row weight [B], 1 / D_tok) as tensors: no host sync, works for global counts."""
    B = mask_f.shape[0]
    dev, dt = mask_f.device, mask_f.dtype
    if global_tokens is None:
        d_tok = mask_f.sum().clamp(min=1.0)
    else:
        d_tok = torch.as_tensor(global_tokens, dtype=dt, device=dev)
    d_seq = torch.as_tensor(global_seqs if global_seqs is not None else max(B, 1), dtype=dt, device=dev)
    if agg == "token-mean":
        row_w = (1.0 / d_tok).expand(B)
    elif agg == "seq-mean-token-sum":
        row_w = (1.0 / d_seq).expand(B)
    else:
        row_w = 1.0 / (mask_f.sum(1).clamp(min=1.0) * d_seq)
    return row_w.contiguous(), 1.0 / d_tok


def _kl_terms(logp, ref, kind):
    if kind == "k1":
        return logp - ref
    if kind == "k2":
        return 0.5 * (logp - ref) ** 2
    d = ref - logp
    return torch.clamp(torch.exp(d) - d - 1.0, -K3_CLAMP, K3_CLAMP)


# ----------------------------------------------------------------------------- reference


def policy_loss_reference(
    logp, old_logp, ref_logp, advantages, mask, clip_low=0.2, clip_high=0.2, kl="k3", kl_coef=0.0,
    agg="token-mean", global_tokens=None, global_seqs=None,
):
    """Straight from the formulas, autograd for the gradient (the test oracle)."""
    _check(logp, old_logp, ref_logp, advantages, mask, kl, kl_coef, agg, clip_low, clip_high)
    dt = torch.float64 if logp.dtype == torch.float64 else torch.float32
    lp = logp.to(dt)
    old, adv, m = old_logp.detach().to(dt), advantages.detach().to(dt), mask.detach().to(dt)
    if adv.dim() == 1:
        adv = adv[:, None].expand_as(lp)
    ratio = torch.exp(torch.clamp(lp - old, -RATIO_CLAMP, RATIO_CLAMP))
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    pg = torch.maximum(pg1, pg2)
    kl_t = _kl_terms(lp, ref_logp.detach().to(dt), kl) if kl is not None else torch.zeros_like(lp)
    row_w, inv_tok = _denominators(m, agg, global_tokens, global_seqs)
    w = m * row_w[:, None]
    pg_loss = (w * pg).sum()
    kl_val = (w * kl_t).sum()
    loss = pg_loss + kl_coef * kl_val
    metrics = {
        "pg_loss": pg_loss.detach(),
        "kl": kl_val.detach(),
        "clipfrac": ((pg2 > pg1).to(dt) * m).sum() * inv_tok,
        "approx_kl": ((old - lp.detach()) * m).sum() * inv_tok,
    }
    return loss, metrics


# ----------------------------------------------------------------------------- torch path


def _torch_fused(lp, old, ref, adv, m, row_w, inv_tok, clip_low, clip_high, kl, kl_coef, want_grad=True):
    """Forward values and d loss / d logp in one pass of elementwise ops (no autograd graph)."""
    if adv.dim() == 1:
        adv = adv[:, None]
    diff = lp - old
    ratio = torch.exp(torch.clamp(diff, -RATIO_CLAMP, RATIO_CLAMP))
    in_ratio = (diff >= -RATIO_CLAMP) & (diff <= RATIO_CLAMP)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    unclipped = pg1 >= pg2
    pg = torch.where(unclipped, pg1, pg2)
    dpg = torch.where(unclipped & in_ratio, pg1, 0.0) if want_grad else None  # d(-A * r)/dlogp = -A * r
    w = m * row_w[:, None]
    if kl is None:
        kl_t = torch.zeros_like(lp)
        dkl = kl_t
    elif kl == "k1":
        kl_t, dkl = lp - ref, 1.0
    elif kl == "k2":
        kl_t = 0.5 * (lp - ref) ** 2
        dkl = lp - ref
    else:
        d = ref - lp
        e = torch.exp(d)
        raw = e - d - 1.0
        kl_t = torch.clamp(raw, -K3_CLAMP, K3_CLAMP)
        dkl = torch.where((raw >= -K3_CLAMP) & (raw <= K3_CLAMP), 1.0 - e, 0.0) if want_grad else None
    pg_loss = (w * pg).sum()
    kl_val = (w * kl_t).sum()
    grad = w * (dpg + kl_coef * dkl) if want_grad else None
    clipfrac = ((pg2 > pg1).to(lp.dtype) * m).sum() * inv_tok
    approx_kl = (-diff * m).sum() * inv_tok
    return pg_loss + kl_coef * kl_val, pg_loss, kl_val, clipfrac, approx_kl, grad


_COMPILED: dict = {}


def _compiled_fused(*args):
    """``_torch_fused`` through torch.compile: one fused loop instead of ~25 memory-bound passes.

    Opt-in (``impl="compile"``): the first call per process compiles (seconds to a minute, a C++
    compiler is needed on CPU); shapes are dynamic, so later batch shapes reuse the code.
    """
    fn = _COMPILED.get("fn")
    if fn is None:
        fn = _COMPILED["fn"] = torch.compile(_torch_fused, dynamic=True)
    return fn(*args)


# ----------------------------------------------------------------------------- triton path

if HAS_TRITON:

    @triton.jit
    def _policy_loss_kernel(
        lp_ptr, old_ptr, ref_ptr, adv_ptr, m_ptr, roww_ptr, grad_ptr, part_ptr,
        n_tok, T, clip_low, clip_high, kl_coef,
        KL: tl.constexpr, BLOCK: tl.constexpr, RCLAMP: tl.constexpr, KCLAMP: tl.constexpr,
        ADV_PER_SEQ: tl.constexpr, WANT_GRAD: tl.constexpr,
    ):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        ok = offs < n_tok
        lp = tl.load(lp_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        old = tl.load(old_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        if ADV_PER_SEQ:
            adv = tl.load(adv_ptr + offs // T, mask=ok, other=0.0).to(tl.float32)
        else:
            adv = tl.load(adv_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        m = tl.load(m_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        w = m * tl.load(roww_ptr + offs // T, mask=ok, other=0.0)
        diff = lp - old
        ratio = tl.exp(tl.minimum(tl.maximum(diff, -RCLAMP), RCLAMP))
        in_ratio = (diff >= -RCLAMP) & (diff <= RCLAMP)
        pg1 = -adv * ratio
        pg2 = -adv * tl.minimum(tl.maximum(ratio, 1.0 - clip_low), 1.0 + clip_high)
        unclipped = pg1 >= pg2
        pg = tl.where(unclipped, pg1, pg2)
        dpg = tl.where(unclipped & in_ratio, pg1, 0.0)
        if KL == 0:
            kl_t = tl.zeros((BLOCK,), tl.float32)
            dkl = kl_t
        else:
            ref = tl.load(ref_ptr + offs, mask=ok, other=0.0).to(tl.float32)
            if KL == 1:
                kl_t = lp - ref
                dkl = tl.full((BLOCK,), 1.0, tl.float32)
            elif KL == 2:
                kl_t = 0.5 * (lp - ref) * (lp - ref)
                dkl = lp - ref
            else:
                d = ref - lp
                e = tl.exp(d)
                raw = e - d - 1.0
                kl_t = tl.minimum(tl.maximum(raw, -KCLAMP), KCLAMP)
                dkl = tl.where((raw >= -KCLAMP) & (raw <= KCLAMP), 1.0 - e, 0.0)
        if WANT_GRAD:
            tl.store(grad_ptr + offs, w * (dpg + kl_coef * dkl), mask=ok)
        # Per-block partial sums, reduced by torch afterwards: deterministic, no atomics.
        base = part_ptr + pid * 4
        tl.store(base + 0, tl.sum(w * pg, axis=0))
        tl.store(base + 1, tl.sum(w * kl_t, axis=0))
        tl.store(base + 2, tl.sum(tl.where(pg2 > pg1, m, 0.0), axis=0))
        tl.store(base + 3, tl.sum(-diff * m, axis=0))


def _triton_fused(lp, old, ref, adv, m, row_w, inv_tok, clip_low, clip_high, kl, kl_coef, want_grad=True):
    B, T = lp.shape
    n = B * T
    grad = torch.empty(B, T, dtype=torch.float32, device=lp.device) if want_grad else lp
    block = 1024
    nblocks = triton.cdiv(n, block) if n else 0
    part = torch.zeros(max(nblocks, 1), 4, dtype=torch.float32, device=lp.device)
    if n:
        _policy_loss_kernel[(nblocks,)](
            lp.contiguous(), old.contiguous(), (ref if ref is not None else lp).contiguous(), adv.contiguous(),
            m.contiguous(), row_w.to(torch.float32).contiguous(), grad, part,
            n, T, float(clip_low), float(clip_high), float(kl_coef),
            KL=KL_KINDS.index(kl) + 1 if kl is not None else 0, BLOCK=block, RCLAMP=RATIO_CLAMP, KCLAMP=K3_CLAMP,
            ADV_PER_SEQ=adv.dim() == 1, WANT_GRAD=want_grad,
        )
    sums = part.sum(0)
    pg_loss, kl_val = sums[0], sums[1]
    return pg_loss + kl_coef * kl_val, pg_loss, kl_val, sums[2] * inv_tok, sums[3] * inv_tok, (
        grad if want_grad else None)


# ----------------------------------------------------------------------------- autograd


class _PolicyLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lp, old, ref, adv, m, row_w, inv_tok, clip_low, clip_high, kl, kl_coef, impl, want_grad):
        fn = {"triton": _triton_fused, "compile": _compiled_fused}.get(impl, _torch_fused)
        # Under no_grad (or a frozen logp) the per-token gradient is not computed at all.
        loss, pg_loss, kl_val, clipfrac, approx_kl, grad = fn(
            lp, old, ref, adv, m, row_w, inv_tok, clip_low, clip_high, kl, kl_coef, want_grad
        )
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(pg_loss, kl_val, clipfrac, approx_kl)
        return loss, pg_loss, kl_val, clipfrac, approx_kl

    @staticmethod
    def backward(ctx, g_loss, *_):
        (grad,) = ctx.saved_tensors
        return (g_loss * grad,) + (None,) * 12


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    kl: str | None = "k3",
    kl_coef: float = 0.0,
    agg: str = "token-mean",
    impl: str | None = None,
    global_tokens: int | float | torch.Tensor | None = None,
    global_seqs: int | float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Fused PPO-clip + KL loss on [B, T] token tensors -> (loss, metrics).

    ``advantages`` is [B, T] or per-sequence [B] (broadcast inside the op: no [B, T] copy).
    ``impl``: None (Triton on CUDA, eager PyTorch elsewhere), "reference", "torch", "triton", or
    "compile" (the PyTorch path through torch.compile; the fast CPU choice for large batches).

    ``global_tokens`` / ``global_seqs``: denominators for token-mean / seq-mean-* (and for the
    token-mean metrics); pass the counts of the whole optimiser step so that summing the
    micro-batch losses (and gradients) over micro-batches and ranks gives the full-batch value.
    For Dr.GRPO's constant normaliser pass ``global_tokens = num_seqs * max_response_len``.
    """
    _check(logp, old_logp, ref_logp, advantages, mask, kl, kl_coef, agg, clip_low, clip_high)
    which = "compile" if impl == "compile" else resolve_impl(impl, logp.device, "policy_loss")
    if which == "reference":
        return policy_loss_reference(
            logp, old_logp, ref_logp, advantages, mask, clip_low, clip_high, kl, kl_coef, agg, global_tokens, global_seqs
        )
    dt = torch.float64 if (logp.dtype == torch.float64 and which != "triton") else torch.float32
    m = mask.detach().to(dt)
    row_w, inv_tok = _denominators(m, agg, global_tokens, global_seqs)
    ref = ref_logp.detach().to(dt) if ref_logp is not None else None
    loss, pg_loss, kl_val, clipfrac, approx_kl = _PolicyLoss.apply(
        logp.to(dt), old_logp.detach().to(dt), ref, advantages.detach().to(dt), m, row_w, inv_tok,
        float(clip_low), float(clip_high), kl, float(kl_coef), which, torch.is_grad_enabled() and logp.requires_grad,
    )
    return loss, {"pg_loss": pg_loss, "kl": kl_val, "clipfrac": clipfrac, "approx_kl": approx_kl}
