"""Unit tests of the trainer's parts against plain-loop oracles."""

import math
import random

import pytest
import torch

from ifrl.algo import compute_advantages, kl_penalty, policy_loss, token_weights
from ifrl.algo.advantages import gae, gae_oracle, group_oracle
from ifrl.algo.losses import logprobs_reference, policy_loss_oracle
from ifrl.config import load_config
from ifrl.packing import build_micro_batches, plan_micro_batches
from ifrl.sampler import PromptSampler


@pytest.mark.parametrize("estimator", ["grpo", "drgrpo", "rloo"])
def test_group_advantages_match_oracle(estimator):
    rng = random.Random(0)
    n, groups = 4, 5
    rewards = [float(rng.choice([0, 1, 2.5, 5])) for _ in range(n * groups)]
    valid = [rng.random() > 0.2 for _ in rewards]
    valid[0:4] = [True, False, False, False]  # a group with one valid sample
    mask_BR = torch.ones(len(rewards), 3)
    adv_BR, _ = compute_advantages(estimator, torch.tensor(rewards), torch.tensor(valid), mask_BR, n)
    want = group_oracle(rewards, valid, n, estimator)
    assert torch.allclose(adv_BR[:, 0], torch.tensor(want, dtype=torch.float32), atol=1e-5)
    assert torch.all(adv_BR[~torch.tensor(valid)] == 0)


def test_reinforce_pp_matches_kernel_reference():
    from ifrl.kernels import reinforce_pp_advantages_reference

    torch.manual_seed(0)
    lens, R = [4, 2, 5, 1], 5
    mask_BR = (torch.arange(R)[None] < torch.tensor(lens)[:, None]).float()
    reward_B = torch.tensor([1.0, -2.0, 0.5, 3.0])
    valid_B = torch.tensor([True, True, False, True])
    adv_BR, _ = compute_advantages("reinforce++", reward_B, valid_B, mask_BR, 2, gamma=0.9)
    m_BR = mask_BR * valid_B[:, None]
    rew_BR = torch.zeros(4, R, dtype=torch.float64)
    for b, L in enumerate(lens):
        rew_BR[b, L - 1] = reward_B[b] if valid_B[b] else 0.0
    want, _ = reinforce_pp_advantages_reference(rew_BR, m_BR, 0.9)
    torch.testing.assert_close(adv_BR.double(), want, rtol=1e-5, atol=1e-5)
    assert torch.all(adv_BR[2] == 0)


def test_gae_matches_oracle_per_sequence():
    torch.manual_seed(0)
    lens = [5, 3, 1]
    R = 5
    mask_BR = (torch.arange(R)[None] < torch.tensor(lens)[:, None]).float()
    values_BR = torch.randn(3, R) * mask_BR
    reward_B = torch.tensor([1.0, -2.0, 0.5])
    # undo the whitening by comparing the (unwhitened) returns - values
    _, ret_BR = gae(reward_B, mask_BR, values_BR, 0.9, 0.8)
    for b, L in enumerate(lens):
        r_t = [0.0] * (L - 1) + [float(reward_B[b])]
        want = gae_oracle(r_t, values_BR[b, :L].tolist(), 0.9, 0.8)
        got = (ret_BR[b, :L] - values_BR[b, :L]).tolist()
        assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"])
@pytest.mark.parametrize("kl", ["k1", "k2", "k3"])
def test_policy_loss_matches_oracle(agg, kl):
    torch.manual_seed(1)
    lens = [3, 1, 4]
    seqs, flat = [], {"logp": [], "old": [], "ref": [], "adv": [], "len": []}
    for L in lens:
        s = {k: (torch.randn(L) * 0.3 - 1).tolist() for k in ("logp", "old", "ref")}
        s["adv"] = [float(torch.randn(1))] * L
        seqs.append(s)
        for k in ("logp", "old", "ref", "adv"):
            flat[k] += s[k]
        flat["len"] += [L] * L
    t = {k: torch.tensor(v) for k, v in flat.items()}
    w_N = token_weights(agg, t["len"], sum(lens), len(lens))
    loss, m = policy_loss(t["logp"], t["old"], t["adv"], w_N, clip_low=0.2, clip_high=0.28, ref_N=t["ref"],
                          kl=kl, kl_coef=0.05)
    want = policy_loss_oracle(seqs, clip_low=0.2, clip_high=0.28, agg=agg, kl=kl, kl_coef=0.05)
    assert float(loss) == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert float(m["tokens"]) == sum(lens)
    # the metric sums are per-token sums whatever the aggregation weights
    assert float(m["kl_sum"]) == pytest.approx(float(kl_penalty(t["logp"], t["ref"], kl).sum()), rel=1e-5, abs=1e-6)
    clipped = sum(1 for lp, o, a in zip(flat["logp"], flat["old"], flat["adv"])
                  if -a * min(max(math.exp(lp - o), 0.8), 1.28) > -a * math.exp(lp - o))
    assert float(m["clip_sum"]) == clipped
    (g,) = torch.autograd.grad(policy_loss(t["logp"].requires_grad_(), t["old"], t["adv"], w_N, clip_low=0.2,
                                           clip_high=0.28, ref_N=t["ref"], kl=kl, kl_coef=0.05)[0], t["logp"])
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_k3_is_nonnegative_and_zero_at_equality():
    x = torch.linspace(-3, 3, 50)
    assert torch.all(kl_penalty(x, x.flip(0), "k3") >= 0)
    assert torch.all(kl_penalty(x, x, "k3") == 0)


def test_logprobs_reference_matches_log_softmax():
    torch.manual_seed(0)
    h, w = torch.randn(7, 8), torch.randn(11, 8)
    labels = torch.tensor([0, 3, -100, 10, 2, 2, 5])
    got, ent = logprobs_reference(h, w, labels, temperature=0.7, return_entropy=True, chunk=3)
    lsm = (h @ w.t() / 0.7).log_softmax(-1)
    want = torch.where(labels >= 0, lsm.gather(1, labels.clamp(min=0)[:, None])[:, 0], torch.zeros(7))
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(ent, -(lsm.exp() * lsm).sum(-1), atol=1e-5)


def test_packing_budget_and_labels():
    prompt = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10]]
    resp = [[11, 12], [13], [14, 15, 16], [17]]
    plan = plan_micro_batches([5, 3, 4, 5], token_budget=8)
    assert sorted(i for g in plan for i in g) == [0, 1, 2, 3]
    assert all(sum([5, 3, 4, 5][i] for i in g) <= 8 for g in plan)
    mbs = build_micro_batches(prompt, resp, [0, 1, 2, 3], token_budget=100)
    assert len(mbs) == 1
    mb = mbs[0]
    assert mb.position_ids_T.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4]
    sel = mb.labels_T >= 0
    # every response token appears exactly once as a label, predicted from the previous position
    got = sorted(zip(mb.sample_T[sel].tolist(), mb.resp_pos_T[sel].tolist(), mb.labels_T[sel].tolist()))
    want = sorted((s, j, t) for s in range(4) for j, t in enumerate(resp[s]))
    assert got == want
    for t in torch.nonzero(sel)[:, 0].tolist():
        assert mb.input_ids_T[t + 1] == mb.labels_T[t]


def test_packed_forward_equals_separate(tiny_model):
    from ifrl.packing import build_micro_batches

    model, _ = tiny_model
    model.eval()
    g = torch.Generator().manual_seed(0)
    prompt = [torch.randint(3, 1000, (n,), generator=g).tolist() for n in (5, 9, 3)]
    resp = [torch.randint(3, 1000, (n,), generator=g).tolist() for n in (4, 2, 6)]
    mb = build_micro_batches(prompt, resp, [0, 1, 2], token_budget=10_000)[0]
    with torch.no_grad():
        logits = model(input_ids=mb.input_ids_T[None], position_ids=mb.position_ids_T[None], use_cache=False).logits[0]
        sel = mb.labels_T >= 0
        packed = logits.log_softmax(-1)[sel].gather(1, mb.labels_T[sel][:, None])[:, 0]
        sep = []
        for p, r in zip(prompt, resp):
            lg = model(input_ids=torch.tensor([p + r]), use_cache=False).logits[0].log_softmax(-1)
            sep += [lg[len(p) - 1 + j, r[j]] for j in range(len(r))]
    # packed order is sample-sorted within the micro-batch, same as the loop above
    assert torch.allclose(packed, torch.stack(sep), atol=1e-5)


def test_sampler_each_prompt_once_per_epoch_and_resumes():
    n, per_step, world = 11, 4, 2
    samplers = [PromptSampler(n, per_step, r, world, seed=3) for r in range(world)]
    seen = []
    for _ in range(3):  # 11 prompts / 4 per step -> 3 steps per epoch (4 + 4 + 3)
        for s in samplers:
            seen += s.next()
    assert sorted(seen) == list(range(n))
    assert samplers[0].epoch == 1
    state = samplers[1].state_dict()
    cont = [samplers[1].next() for _ in range(2)]
    fresh = PromptSampler(n, per_step, 1, world, seed=3)
    fresh.load_state_dict(state)
    assert [fresh.next() for _ in range(2)] == cont


def test_config_typo_and_bad_values(tmp_path, config_path):
    with pytest.raises(ValueError, match=r"unknown config key 'optim.lrr'.*Did you mean 'lr'"):
        load_config(config_path, ["optim.lrr=1e-5"])
    with pytest.raises(ValueError, match=r"algo.estimator='gpro'.*Choose one of grpo"):
        load_config(config_path, ["algo.estimator=gpro"])
    with pytest.raises(ValueError, match=r"rollout.n.*must be an integer"):
        load_config(config_path, ["rollout.n=two"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  naem: x\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config key 'model.naem'.*Did you mean 'name'"):
        load_config(bad)
    with pytest.raises(ValueError, match=r"does not exist"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config(config_path, ["optim.lr=3e-5", "rollout.stop_strings=[END]"])
    assert cfg.optim.lr == 3e-5 and cfg.rollout.stop_strings == ["END"]


@pytest.mark.parametrize("name", ["tiny-cpu", "smollm2-cpu", "qwen2.5-7b-instruct", "r1-distill-qwen-7b"])
def test_shipped_configs_validate(name):
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml")
    if name.endswith("7b") or name.endswith("instruct"):
        # the seed's recipe
        assert (cfg.rollout.n, cfg.rollout.temperature, cfg.optim.lr, cfg.prompts_per_step) == (5, 1.0, 1e-6, 384)
        assert (cfg.algo.mini_batches, cfg.algo.kl, cfg.algo.kl_coef, cfg.rollout.max_new_tokens) == (4, "k3", 0.01, 8192)
        assert cfg.prompts_per_step % 24 == 0  # 3 nodes x 8 GPUs
