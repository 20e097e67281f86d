"""Advantage estimators (registry ``ESTIMATORS``), with masked-out (failed) samples.

Shapes: ``B`` samples (grouped: n consecutive samples share a prompt), ``R`` padded response
tokens. Every estimator returns token-level advantages ``adv_BR`` (zero on padding) and, for
``gae``, the value targets ``ret_BR``.

* grpo:   A_i = (R_i - mean_g) / (std_g + eps)   (std unbiased; a group of one gives 0)
* drgrpo: A_i = R_i - mean_g                      (no std division; pair with seq-mean-token-sum)
* rloo:   A_i = R_i - mean_{j != i, j in g} R_j
* reinforce++: discounted token returns of the token rewards, whitened over all valid tokens of
  all ranks (the batch-level baseline of REINFORCE++)
* gae:    generalised advantage estimation with a critic, whitened over all ranks' tokens

Outcome rewards sit on the last response token; ``token_kl_BR`` (KL-in-reward) is subtracted
per token when given. Samples with ``valid_B == False`` get zero advantage and do not enter any
group statistic.
"""

from __future__ import annotations

import torch

from ifrl.dist import all_reduce_sum


def _group_scalar(reward_B: torch.Tensor, valid_B: torch.Tensor, n: int, estimator: str, eps: float = 1e-6):
    r_GN = reward_B.view(-1, n).double()
    v_GN = valid_B.view(-1, n).double()
    r_GN = torch.where(v_GN > 0, r_GN, torch.zeros_like(r_GN))
    cnt_G1 = v_GN.sum(1, keepdim=True)
    mean_G1 = r_GN.sum(1, keepdim=True) / cnt_G1.clamp(min=1)
    if estimator == "grpo":
        var_G1 = (((r_GN - mean_G1) ** 2) * v_GN).sum(1, keepdim=True) / (cnt_G1 - 1).clamp(min=1)
        adv_GN = (r_GN - mean_G1) / (var_G1.sqrt() + eps)
        adv_GN = torch.where(cnt_G1 > 1, adv_GN, torch.zeros_like(adv_GN))
    elif estimator == "drgrpo":
        adv_GN = r_GN - mean_G1
    elif estimator == "rloo":
        loo_GN = (r_GN.sum(1, keepdim=True) - r_GN) / (cnt_G1 - 1).clamp(min=1)
        adv_GN = torch.where(cnt_G1 > 1, r_GN - loo_GN, torch.zeros_like(r_GN))
    else:
        raise ValueError(estimator)
    return (adv_GN * v_GN).view(-1).float()


def _token_rewards(reward_B, mask_BR, token_kl_BR, kl_coef):
    last_B = (mask_BR.sum(1) - 1).clamp(min=0).long()
    rew_BR = torch.zeros_like(mask_BR, dtype=torch.float32)
    rew_BR[torch.arange(len(reward_B)), last_B] = reward_B.float()
    if token_kl_BR is not None:
        rew_BR = rew_BR - kl_coef * token_kl_BR
    return rew_BR * mask_BR


def _whiten(x_BR, mask_BR, eps=1e-8):
    # Global (all ranks) mean/variance: one all-reduce of [sum, sumsq, count].
    m = mask_BR.float()
    stats = torch.stack([(x_BR * m).sum(), (x_BR * x_BR * m).sum(), m.sum()]).double()
    all_reduce_sum(stats)
    mean = stats[0] / stats[2].clamp(min=1)
    var = (stats[1] / stats[2].clamp(min=1) - mean * mean).clamp(min=0)
    var = var * stats[2] / (stats[2] - 1).clamp(min=1)
    return ((x_BR - mean.float()) * torch.rsqrt(var.float() + eps)) * m


def reinforce_pp(reward_B, mask_BR, gamma, token_kl_BR=None, kl_coef=0.0):
    rew_BR = _token_rewards(reward_B, mask_BR, token_kl_BR, kl_coef)
    ret_BR = torch.zeros_like(rew_BR)
    running = torch.zeros(rew_BR.shape[0])
    for t in reversed(range(rew_BR.shape[1])):
        running = rew_BR[:, t] + gamma * running * mask_BR[:, t]
        ret_BR[:, t] = running
    return _whiten(ret_BR, mask_BR)


def gae(reward_B, mask_BR, values_BR, gamma, lam, token_kl_BR=None, kl_coef=0.0):
    rew_BR = _token_rewards(reward_B, mask_BR, token_kl_BR, kl_coef)
    m = mask_BR.float()
    adv_BR = torch.zeros_like(rew_BR)
    last = torch.zeros(rew_BR.shape[0])
    next_v = torch.zeros(rew_BR.shape[0])
    for t in reversed(range(rew_BR.shape[1])):
        delta = rew_BR[:, t] + gamma * next_v - values_BR[:, t]
        last = delta + gamma * lam * last
        adv_BR[:, t] = last * m[:, t]
        # Padding positions must not leak into earlier tokens.
        next_v = torch.where(m[:, t] > 0, values_BR[:, t], next_v)
        last = last * m[:, t]
    ret_BR = (adv_BR + values_BR) * m
    return _whiten(adv_BR, mask_BR), ret_BR


ESTIMATORS = ("grpo", "drgrpo", "rloo", "reinforce++", "gae")


def compute_advantages(estimator: str, reward_B, valid_B, mask_BR, n: int, *, gamma=1.0, lam=1.0,
                       values_BR=None, token_kl_BR=None, kl_coef=0.0):
    """Return ``(adv_BR, ret_BR | None)``; failed samples (``~valid_B``) get zeros."""
    mask_BR = mask_BR * valid_B[:, None]
    reward_B = torch.where(valid_B, reward_B, torch.zeros_like(reward_B))
    if estimator in ("grpo", "drgrpo", "rloo"):
        if token_kl_BR is not None:
            reward_B = reward_B - kl_coef * (token_kl_BR * mask_BR).sum(1)
        adv_B = _group_scalar(reward_B, valid_B, n, estimator)
        return adv_B[:, None] * mask_BR, None
    if estimator == "reinforce++":
        return reinforce_pp(reward_B, mask_BR, gamma, token_kl_BR, kl_coef), None
    if estimator == "gae":
        return gae(reward_B, mask_BR, values_BR, gamma, lam, token_kl_BR, kl_coef)
    raise ValueError(f"algo.estimator={estimator!r} unknown; choose one of {', '.join(ESTIMATORS)}.")


# --------------------------- plain-loop oracles (tests) ----------------------------------------
def group_oracle(rewards: list[float], valid: list[bool], n: int, estimator: str, eps=1e-6) -> list[float]:
    out = []
    for g in range(0, len(rewards), n):
        rs = [rewards[i] for i in range(g, g + n) if valid[i]]
        for i in range(g, g + n):
            if not valid[i]:
                out.append(0.0)
                continue
            mean = sum(rs) / len(rs)
            if estimator == "drgrpo":
                out.append(rewards[i] - mean)
            elif len(rs) < 2:
                out.append(0.0)
            elif estimator == "grpo":
                std = (sum((r - mean) ** 2 for r in rs) / (len(rs) - 1)) ** 0.5
                out.append((rewards[i] - mean) / (std + eps))
            else:  # rloo
                out.append(rewards[i] - (sum(rs) - rewards[i]) / (len(rs) - 1))
    return out


def gae_oracle(rewards_t: list[float], values_t: list[float], gamma: float, lam: float) -> list[float]:
    adv, last = [0.0] * len(rewards_t), 0.0
    for t in reversed(range(len(rewards_t))):
        nv = values_t[t + 1] if t + 1 < len(values_t) else 0.0
        last = rewards_t[t] + gamma * nv - values_t[t] + gamma * lam * last
        adv[t] = last
    return adv
