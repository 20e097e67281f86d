import pytest
import torch

from ifrl.kernels import (
    ESTIMATORS,
    broadcast_to_tokens,
    gae_advantages,
    gae_advantages_reference,
    group_advantages,
    group_advantages_reference,
    masked_whiten,
    reinforce_pp_advantages,
    reinforce_pp_advantages_reference,
)

from .conftest import device

pytestmark = pytest.mark.kernels


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("B,G", [(15, 5), (2, 2), (0, 3), (7 * 70, 70)])
def test_group_advantages_match_float64(impl, estimator, B, G):
    g = torch.Generator().manual_seed(B + G)
    rewards = (torch.rand(B, generator=g) * 5).round()  # ties and all-equal groups happen
    if B >= 2 * G:
        rewards[G : 2 * G] = 3.0  # one group with zero variance: grpo gives 0, not nan
    want = group_advantages_reference(rewards.double(), G, estimator)
    got = group_advantages(rewards.to(device()), G, estimator, impl=impl)
    assert got.dtype == torch.float32 and got.shape == (B,)
    torch.testing.assert_close(got.cpu().double(), want, rtol=1e-5, atol=1e-5)
    if B >= 2 * G:
        assert torch.all(got[G : 2 * G] == 0)


def _masked_case(B, G, seed):
    """Rewards with ties plus a mask that covers every corner: an all-invalid group, a group with
    one valid member, a zero-variance group among its valid members, and random holes."""
    g = torch.Generator().manual_seed(seed)
    rewards = (torch.rand(B, generator=g) * 5).round()
    valid = torch.rand(B, generator=g) > 0.3
    groups = B // G
    if groups >= 1:
        valid[0:G] = False  # all invalid
    if groups >= 2:
        valid[G : 2 * G] = False
        valid[G + G // 2] = True  # exactly one valid member
    if groups >= 3:
        valid[2 * G : 3 * G] = True
        valid[2 * G] = False
        rewards[2 * G + 1 : 3 * G] = 2.0  # the valid members tie: zero variance
        rewards[2 * G] = 7.0  # ... and the invalid one must not count
    if groups >= 4:
        valid[3 * G : 4 * G] = True  # a full group: same as no mask
    return rewards, valid


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("B,G", [(15, 5), (2, 2), (0, 3), (28, 7), (9 * 33, 33)])
def test_group_advantages_with_valid_mask(impl, estimator, B, G):
    rewards, valid = _masked_case(B, G, seed=B * 31 + G)
    want = group_advantages_reference(rewards.double(), G, estimator, valid_B=valid)
    dev = device()
    got = group_advantages(rewards.to(dev), G, estimator, valid_B=valid.to(dev), impl=impl)
    assert got.dtype == torch.float32 and got.shape == (B,)
    torch.testing.assert_close(got.cpu().double(), want, rtol=1e-5, atol=1e-5)
    assert torch.all(got.cpu()[~valid] == 0)
    if B >= 2 * G:
        assert torch.all(got[: 2 * G] == 0)  # no valid member / a single one: no baseline
    if B >= 3 * G and estimator in ("grpo", "drgrpo"):
        assert torch.all(got[2 * G : 3 * G] == 0)  # the valid members tie
    if B >= 4 * G:
        full = group_advantages(rewards[3 * G : 4 * G].to(dev), G, estimator, impl=impl)
        torch.testing.assert_close(got[3 * G : 4 * G], full, rtol=1e-6, atol=1e-6)


def test_group_advantages_valid_mask_definitions():
    r = torch.tensor([1.0, 2.0, 9.0, 6.0, 4.0, 5.0, 7.0, 8.0])
    valid = torch.tensor([True, True, False, True, False, False, True, False])
    kept = torch.tensor([1.0, 2.0, 6.0])  # group 0 without the 9; group 1 keeps only the 7
    want = {"grpo": (kept - 3.0) / kept.std(), "drgrpo": kept - 3.0, "rloo": torch.tensor([1 - 4.0, 2 - 3.5, 6 - 1.5])}
    for est, w in want.items():
        expect = torch.tensor([w[0], w[1], 0.0, w[2], 0.0, 0.0, 0.0, 0.0])
        torch.testing.assert_close(group_advantages(r, 4, est, eps=0.0, valid_B=valid), expect)
        torch.testing.assert_close(group_advantages_reference(r, 4, est, eps=0.0, valid_B=valid), expect)
    with pytest.raises(ValueError, match="valid_B has shape"):
        group_advantages(r, 4, valid_B=valid[:4])


def test_group_advantages_definitions():
    r = torch.tensor([1.0, 2.0, 3.0, 6.0])
    std = r.std()  # unbiased
    torch.testing.assert_close(group_advantages(r, 4, "grpo", eps=0.0), (r - 3.0) / std)
    torch.testing.assert_close(group_advantages(r, 4, "drgrpo"), r - 3.0)
    loo = torch.tensor([1 - 11 / 3, 2 - 10 / 3, 3 - 9 / 3, 6 - 6 / 3])
    torch.testing.assert_close(group_advantages(r, 4, "rloo"), loo)


def test_group_advantages_errors():
    r = torch.zeros(6)
    with pytest.raises(ValueError, match="B=6 is not a multiple of group_size=4"):
        group_advantages(r, 4)
    with pytest.raises(ValueError, match="group_size=1"):
        group_advantages(r, 1)
    with pytest.raises(ValueError, match="estimator='ppo' is unknown"):
        group_advantages(r, 3, "ppo")


def test_broadcast_to_tokens():
    adv = torch.tensor([1.5, -2.0])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert torch.equal(broadcast_to_tokens(adv, mask), torch.tensor([[1.5, 1.5, 0.0], [0.0, -2.0, -2.0]]))


def _token_batch(B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, T, generator=g)
    values = torch.randn(B, T, generator=g)
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    lengths[0] = T
    if B > 1:
        lengths[1] = 0  # an empty response
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    if B > 2:
        mask[2] = (torch.arange(T) % 3 != 1).float()  # holes inside a response (multi-turn)
    return rewards, values, mask


@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("B,T", [(9, 13), (1, 1), (70, 5)])
def test_gae_matches_float64(impl, whiten, B, T):
    rewards, values, mask = _token_batch(B, T)
    want_a, want_r = gae_advantages_reference(rewards.double(), values.double(), mask, 0.97, 0.9, whiten)
    dev = device()
    got_a, got_r = gae_advantages(rewards.to(dev), values.to(dev), mask.to(dev), 0.97, 0.9, whiten, impl=impl)
    assert got_a.dtype == torch.float32
    torch.testing.assert_close(got_a.cpu().double(), want_a, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(got_r.cpu().double(), want_r, rtol=1e-5, atol=2e-5)
    assert torch.all(got_a.cpu()[mask == 0] == 0) and torch.all(got_r.cpu()[mask == 0] == 0)


def test_gae_hand_computed():
    # One response of 3 tokens after 1 prompt token; gamma=0.5, lam=0.5.
    r = torch.tensor([[9.0, 0.0, 0.0, 1.0]])
    v = torch.tensor([[7.0, 0.5, 0.25, 0.5]])
    m = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    d3 = 1.0 - 0.5
    d2 = 0.0 + 0.5 * 0.5 - 0.25
    d1 = 0.0 + 0.5 * 0.25 - 0.5
    a3, a2 = d3, d2 + 0.25 * d3
    a1 = d1 + 0.25 * a2
    adv, ret = gae_advantages(r, v, m, gamma=0.5, lam=0.5, whiten=False)
    torch.testing.assert_close(adv, torch.tensor([[0.0, a1, a2, a3]]))
    torch.testing.assert_close(ret, torch.tensor([[0.0, a1 + 0.5, a2 + 0.25, a3 + 0.5]]))


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_reinforce_pp_matches_float64(impl, gamma):
    rewards, _, mask = _token_batch(11, 9, seed=3)
    want_a, want_r = reinforce_pp_advantages_reference(rewards.double(), mask, gamma)
    got_a, got_r = reinforce_pp_advantages(rewards.to(device()), mask.to(device()), gamma, impl=impl)
    torch.testing.assert_close(got_a.cpu().double(), want_a, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(got_r.cpu().double(), want_r, rtol=1e-5, atol=2e-5)
    # Outcome reward on the last token, gamma 1: every response token's return is that reward.
    r = torch.zeros(2, 4)
    r[0, 2], r[1, 3] = 2.0, -1.0
    m = torch.tensor([[1.0, 1, 1, 0], [1, 1, 1, 1]])
    _, ret = reinforce_pp_advantages(r, m, 1.0, impl=impl)
    torch.testing.assert_close(ret.cpu(), torch.tensor([[2.0, 2, 2, 0], [-1, -1, -1, -1]]))


def test_masked_whiten_statistics():
    x = torch.randn(6, 10, dtype=torch.float64)
    m = (torch.rand(6, 10) > 0.4).double()
    w = masked_whiten(x, m)
    sel = w[m > 0]
    torch.testing.assert_close(sel.mean(), torch.tensor(0.0, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(sel.var(), torch.tensor(1.0, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.all(w[m == 0] == 0)


def test_gae_shape_errors():
    with pytest.raises(ValueError, match="values has shape"):
        gae_advantages(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3))
