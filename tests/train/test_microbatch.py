"""Gradients do not depend on how a mini-batch is split into packed micro-batches."""

import pytest
import torch

from ifrl.config import load_config
from ifrl.dist import init_distributed, shutdown
from ifrl.packing import build_micro_batches
from ifrl.train import _build_models, _forward_pass, backward_micro_batch
from train_testlib import tiny_overrides


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
def test_micro_batch_size_1_vs_4_same_gradients(tmp_path, config_path, agg):
    cfg = load_config(config_path, tiny_overrides(tmp_path, **{"algo.loss_agg": agg}))
    info = init_distributed(60)
    try:
        policy, ref, _, _, _ = _build_models(cfg, info)
        g = torch.Generator().manual_seed(0)
        B = 8
        prompt = [torch.randint(3, 40000, (int(n),), generator=g).tolist() for n in torch.randint(4, 12, (B,), generator=g)]
        resp = [torch.randint(3, 40000, (int(n),), generator=g).tolist() for n in torch.randint(1, 9, (B,), generator=g)]
        len_B = torch.tensor([len(r) for r in resp])
        R = int(len_B.max())
        mask_BR = (torch.arange(R)[None] < len_B[:, None]).float()
        one = build_micro_batches(prompt, resp, list(range(B)), 10_000)
        ref_BR = _forward_pass(ref, one, cfg, B, R, info.device)
        old_BR = (ref_BR + 0.3 * torch.randn(B, R, generator=g)) * mask_BR  # ratios away from 1: clipping active
        adv_BR = torch.randn(B, 1, generator=g) * mask_BR
        batch = {"old_BR": old_BR, "ref_BR": ref_BR, "adv_BR": adv_BR, "ret_BR": None, "values_BR": None,
                 "len_B": len_B}
        grads, metrics = {}, {}
        for size in (1, 4):
            mbs = build_micro_batches(prompt, resp, list(range(B)), 10_000, max_seqs=size)
            assert len(mbs) == (B if size == 1 else 2)
            acc = torch.zeros(6, dtype=torch.float64)
            for k, mb in enumerate(mbs):
                backward_micro_batch(policy, None, mb, batch, cfg, float(len_B.sum()), float(B), 1, info.device, acc,
                                     grad_sync=k == len(mbs) - 1)
            grads[size] = {n: p.grad.full_tensor().clone() for n, p in policy.named_parameters() if p.grad is not None}
            metrics[size] = acc.clone()
            policy.zero_grad(set_to_none=True)
        assert grads[1].keys() == grads[4].keys() and len(grads[1]) > 0
        for n in grads[1]:
            torch.testing.assert_close(grads[1][n], grads[4][n], rtol=1e-4, atol=1e-6, msg=n)
        worst = max(float((grads[1][n] - grads[4][n]).abs().max() / grads[1][n].abs().max().clamp(min=1e-12)) for n in grads[1])
        print(f"max relative gradient difference (per tensor, vs its max): {worst:.2e}")
        assert worst < 5e-5
        assert sum(float(v.abs().sum()) for v in grads[1].values()) > 0
        torch.testing.assert_close(metrics[1], metrics[4], rtol=1e-6, atol=1e-8)
        assert metrics[1][2] > 0  # some tokens were clipped
    finally:
        shutdown(info)
