"""Advantage estimators (registry ``ESTIMATORS``), with masked-out (failed) samples.

Shapes: ``B`` samples (grouped: n consecutive samples share a prompt), ``R`` padded response
tokens. Every estimator returns token-level advantages ``adv_BR`` (zero on padding) and, for
``gae``, the value targets ``ret_BR``. The arithmetic is ``ifrl.kernels``; this layer adds the
outcome-reward placement, KL-in-reward and the *global* (all ranks) whitening.

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

from ifrl import kernels
from ifrl.dist import all_reduce_sum


def _token_rewards(reward_B, mask_BR, token_kl_BR, kl_coef):
    last_B = (mask_BR.sum(1) - 1).clamp(min=0).long()
    rew_BR = torch.zeros_like(mask_BR, dtype=torch.float32)
    rew_BR[torch.arange(len(reward_B)), last_B] = reward_B.float()
    if token_kl_BR is not None:
        rew_BR = rew_BR - kl_coef * token_kl_BR
    return rew_BR * mask_BR


def _whiten(x_BR, mask_BR, eps=1e-8):
    # Global (all ranks) mean/variance: one all-reduce of [sum, sumsq, count]. The kernels'
    # masked_whiten sees one rank's tokens only, hence this version.
    m = mask_BR.float()
    stats = torch.stack([(x_BR * m).sum(), (x_BR * x_BR * m).sum(), m.sum()]).double()
    all_reduce_sum(stats)
    mean = stats[0] / stats[2].clamp(min=1)
    var = (stats[1] / stats[2].clamp(min=1) - mean * mean).clamp(min=0)
    var = var * stats[2] / (stats[2] - 1).clamp(min=1)
    return ((x_BR - mean.float()) * torch.rsqrt(var.float() + eps)) * m


def reinforce_pp(reward_B, mask_BR, gamma, token_kl_BR=None, kl_coef=0.0):
    rew_BR = _token_rewards(reward_B, mask_BR, token_kl_BR, kl_coef)
    _, ret_BR = kernels.reinforce_pp_advantages(rew_BR, mask_BR, gamma, whiten=False)
    return _whiten(ret_BR, mask_BR)


def gae(reward_B, mask_BR, values_BR, gamma, lam, token_kl_BR=None, kl_coef=0.0):
    rew_BR = _token_rewards(reward_B, mask_BR, token_kl_BR, kl_coef)
    adv_BR, ret_BR = kernels.gae_advantages(rew_BR, values_BR.float(), mask_BR, gamma, lam, whiten=False)
    return _whiten(adv_BR, mask_BR), ret_BR


ESTIMATORS = ("grpo", "drgrpo", "rloo", "reinforce++", "gae")


def compute_advantages(estimator: str, reward_B, valid_B, mask_BR, n: int, *, gamma=1.0, lam=1.0,
                       values_BR=None, token_kl_BR=None, kl_coef=0.0):
    """Return ``(adv_BR, ret_BR | None)``; failed samples (``~valid_B``) get zeros."""
    mask_BR = mask_BR * valid_B[:, None]
    reward_B = torch.where(valid_B, reward_B, torch.zeros_like(reward_B))
    if estimator in kernels.ESTIMATORS:
        if token_kl_BR is not None:
            reward_B = reward_B - kl_coef * (token_kl_BR * mask_BR).sum(1)
        adv_B = kernels.group_advantages(reward_B.double(), n, estimator, valid_B=valid_B).float()
        return kernels.broadcast_to_tokens(adv_B, mask_BR), None
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
