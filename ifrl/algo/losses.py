"""Policy / value losses over the packed label positions of one micro-batch.

All tensors here are flat over the ``N`` response tokens of a micro-batch. Aggregation is a
per-token weight ``w_N`` computed from *global* (all ranks, whole mini-batch) counts, so the
summed loss of any micro-batch split equals the full-batch loss and results do not depend on
micro-batch size or world size:

* token-mean:            w = 1 / G_tokens
* seq-mean-token-sum:    w = 1 / G_seqs
* seq-mean-token-mean:   w = 1 / (G_seqs * len_seq)

Metrics are returned as detached *sums* (tokens-weighted) so they can be accumulated and
all-reduced once per step instead of synchronising per micro-batch. The surrogate and KL terms
are ``ifrl.kernels.policy_loss`` (fused, Triton on CUDA); ``policy_loss_oracle`` is the
plain-loop twin the tests compare against.
"""

from __future__ import annotations

import torch

AGGREGATIONS = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean")


def _kernels():
    import ifrl.kernels as k

    return k


def logprobs_reference(hidden_NH, weight_VH, labels_N, temperature=1.0, return_entropy=False, chunk=1024):
    """Chunked log-softmax gather; bounded memory (chunk x V logits at a time)."""
    logp, ent = [], []
    for s in range(0, hidden_NH.shape[0], chunk):
        logits = (hidden_NH[s:s + chunk] @ weight_VH.t()).float() / temperature
        lsm = logits.log_softmax(-1)
        lab = labels_N[s:s + chunk]
        logp.append(lsm.gather(-1, lab.clamp(min=0)[:, None])[:, 0] * (lab >= 0))
        if return_entropy:
            ent.append(-(lsm.exp() * lsm).sum(-1))
    logp_N = torch.cat(logp) if logp else hidden_NH.new_zeros(0, dtype=torch.float32)
    if return_entropy:
        return logp_N, (torch.cat(ent) if ent else logp_N.new_zeros(0))
    return logp_N


def token_logprobs(hidden_NH, weight_VH, labels_N, temperature=1.0, return_entropy=False):
    fn = getattr(_kernels(), "fused_linear_logprobs", None)
    if fn is not None:
        return fn(hidden_NH, weight_VH, labels_N, temperature=temperature, return_entropy=return_entropy)
    return logprobs_reference(hidden_NH, weight_VH, labels_N, temperature, return_entropy)


def kl_penalty(logp_N, ref_N, kind: str):
    """Per-token KL(pi || ref) estimators: k1 = log r, k2 = (log r)^2 / 2, k3 = low-variance."""
    d_N = logp_N - ref_N
    if kind == "k1":
        return d_N
    if kind == "k2":
        return 0.5 * d_N * d_N
    if kind == "k3":
        neg = (-d_N).clamp(-20, 20)
        return (neg.exp() - neg - 1).clamp(-10, 10)
    raise ValueError(f"algo.kl={kind!r} unknown; choose k1, k2 or k3.")


def token_weights(agg: str, resp_len_N, global_tokens, global_seqs):
    if agg == "token-mean":
        return torch.ones_like(resp_len_N, dtype=torch.float32) / global_tokens
    if agg == "seq-mean-token-sum":
        return torch.ones_like(resp_len_N, dtype=torch.float32) / global_seqs
    if agg == "seq-mean-token-mean":
        return 1.0 / (global_seqs * resp_len_N.float())
    raise ValueError(f"algo.loss_agg={agg!r} unknown; choose one of {', '.join(AGGREGATIONS)}.")


def policy_loss(logp_N, old_N, adv_N, w_N, *, clip_low, clip_high, ref_N=None, kl="k3", kl_coef=0.0):
    """Clipped surrogate + optional KL loss, ``sum_t w_t * l_t``, through ``ifrl.kernels.policy_loss``.

    Returns ``(loss, metric_sums)`` with the *unweighted* per-token sums the step log averages
    (``kl_sum`` when ``ref_N`` is given, ``clip_sum``, ``tokens``): the loss pass weights its
    metrics by ``w_N``, so a second, gradient-free pass with unit weights gives them.
    """
    k = _kernels()
    kind = kl if ref_N is not None else None
    ref = ref_N[None] if ref_N is not None else None
    loss, _ = k.policy_loss(logp_N[None], old_N[None], ref, adv_N[None], w_N[None], clip_low=clip_low,
                            clip_high=clip_high, kl=kind, kl_coef=kl_coef, agg="token-mean", global_tokens=1)
    with torch.no_grad():
        _, m = k.policy_loss(logp_N.detach()[None], old_N[None], ref, adv_N[None], torch.ones_like(w_N)[None],
                             clip_low=clip_low, clip_high=clip_high, kl=kind, agg="token-mean", global_tokens=1)
    metrics = {"clip_sum": m["clipfrac"], "tokens": torch.tensor(float(logp_N.numel()))}
    if ref_N is not None:
        metrics["kl_sum"] = m["kl"]
    return loss, metrics


def value_loss(v_N, old_v_N, ret_N, w_N, clip):
    """PPO clipped value loss (0.5 * max of clipped/unclipped squared error), weighted-summed."""
    v_clip_N = old_v_N + (v_N - old_v_N).clamp(-clip, clip)
    l_N = 0.5 * torch.maximum((v_N - ret_N) ** 2, (v_clip_N - ret_N) ** 2)
    return (l_N * w_N).sum()


def policy_loss_oracle(seqs, *, clip_low, clip_high, agg, kl="k3", kl_coef=0.0):
    """Plain-loop twin of policy_loss over a list of sequences of dicts with per-token floats
    (logp, old, adv, ref); aggregates over the whole list."""
    import math

    total_tokens = sum(len(s["logp"]) for s in seqs)
    total, = [0.0]
    for s in seqs:
        seq_sum = 0.0
        for t in range(len(s["logp"])):
            r = math.exp(s["logp"][t] - s["old"][t])
            a = s["adv"][t]
            pg = max(-a * r, -a * min(max(r, 1 - clip_low), 1 + clip_high))
            if s.get("ref") is not None and kl_coef:
                d = s["logp"][t] - s["ref"][t]
                if kl == "k1":
                    k = d
                elif kl == "k2":
                    k = 0.5 * d * d
                else:
                    k = min(max(math.exp(-d) + d - 1, -10), 10)
                pg += kl_coef * k
            seq_sum += pg
        if agg == "token-mean":
            total += seq_sum / total_tokens
        elif agg == "seq-mean-token-sum":
            total += seq_sum / len(seqs)
        else:
            total += seq_sum / len(s["logp"]) / len(seqs)
    return total
