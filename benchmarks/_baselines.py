"""Plain baselines the benchmarks compare against (written here; not imported from other projects).

* ``grpo_per_group_loop``: the common "plain" GRPO estimator: a Python dict from prompt id to
  the list of its rewards, one mean/std per group, then one Python step per sample.
* ``eager_policy_loss``: PPO-clip + k3 KL with separate eager ops and autograd, token-mean.
"""

from __future__ import annotations

from collections import defaultdict

import torch


def grpo_per_group_loop(rewards_B: torch.Tensor, group_ids: list, eps: float = 1e-6) -> torch.Tensor:
    scores = rewards_B.clone()
    by_group = defaultdict(list)
    for i in range(scores.shape[0]):
        by_group[group_ids[i]].append(scores[i])
    mean, std = {}, {}
    for gid, vals in by_group.items():
        if len(vals) == 1:
            mean[gid], std[gid] = torch.tensor(0.0), torch.tensor(1.0)
        else:
            t = torch.stack(vals)
            mean[gid], std[gid] = t.mean(), t.std()
    for i in range(scores.shape[0]):
        scores[i] = (scores[i] - mean[group_ids[i]]) / (std[group_ids[i]] + eps)
    return scores


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1)


def eager_policy_loss(logp, old_logp, ref_logp, adv, mask, clip=0.2, kl_coef=0.01):
    """Unfused PPO-clip + k3 ("low_var_kl", clamp 10) with autograd, token-mean."""
    neg_kl = torch.clamp(logp - old_logp, -20.0, 20.0)
    ratio = torch.exp(neg_kl)
    approx_kl = masked_mean(-neg_kl, mask)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    pg = torch.maximum(pg1, pg2)
    clipfrac = masked_mean(torch.gt(pg2, pg1).float(), mask)
    pg_loss = masked_mean(pg, mask)
    kl = torch.clamp(ref_logp - logp, -20.0, 20.0)
    kld = torch.clamp(torch.exp(kl) - kl - 1.0, -10.0, 10.0)
    kl_loss = masked_mean(kld, mask)
    loss = pg_loss + kl_coef * kl_loss
    return loss, {"pg_loss": pg_loss.detach(), "kl": kl_loss.detach(), "clipfrac": clipfrac, "approx_kl": approx_kl}
