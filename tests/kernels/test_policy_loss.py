import pytest
import torch

from ifrl.kernels import AGGS, KL_KINDS, policy_loss, policy_loss_reference

from .conftest import IMPLS, device

pytestmark = pytest.mark.kernels

METRICS = ("pg_loss", "kl", "clipfrac", "approx_kl")


def _batch(B, T, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g) * 3
    old = logp + 0.4 * torch.randn(B, T, generator=g)  # ratios on both sides of the clip range
    ref = logp + 0.8 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, T, generator=g)
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    lengths[0] = T
    if B > 1:
        lengths[1] = 0  # an empty response
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    dev = device()
    return [t.to(dev, dtype) for t in (logp, old, ref, adv)] + [mask.to(dev)]


def _loss_and_grad(fn, logp, *rest, **kw):
    x = logp.detach().clone().requires_grad_()
    loss, metrics = fn(x, *rest, **kw)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), metrics, grad


@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("kl", KL_KINDS)
def test_matches_float64(impl, agg, kl):
    logp, old, ref, adv, mask = _batch(7, 37)
    kw = dict(clip_low=0.2, clip_high=0.28, kl=kl, kl_coef=0.05, agg=agg)
    want = _loss_and_grad(policy_loss_reference, logp.double(), old.double(), ref.double(), adv.double(), mask, **kw)
    got = _loss_and_grad(policy_loss, logp, old, ref, adv, mask, impl=impl, **kw)
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2].double(), want[2], rtol=1e-5, atol=1e-7)
    for k in METRICS:
        assert got[1][k].dim() == 0 and got[1][k].device == logp.device, k
        torch.testing.assert_close(got[1][k].double(), want[1][k], rtol=1e-5, atol=1e-6, msg=k)
    torch.testing.assert_close(got[0], got[1]["pg_loss"] + 0.05 * got[1]["kl"])


def test_k3_is_clamped_and_clipfrac_counts_clipped_tokens(impl):
    dev = device()
    logp = torch.tensor([[0.0, 0.0, 0.0, 0.0]], device=dev)
    old = torch.tensor([[0.0, -1.0, 1.0, 0.0]], device=dev)  # ratios 1, e, 1/e, 1
    ref = torch.tensor([[20.0, 0.0, 0.0, 0.0]], device=dev)  # exp(20) - 21: clamped to 10
    adv = torch.tensor([[1.0, 1.0, -1.0, 1.0]], device=dev)
    mask = torch.ones(1, 4, device=dev)
    loss, m = policy_loss(logp, old, ref, adv, mask, kl="k3", kl_coef=1.0, impl=impl)
    torch.testing.assert_close(m["kl"].cpu(), torch.tensor(10.0 / 4))
    torch.testing.assert_close(m["clipfrac"].cpu(), torch.tensor(0.5))  # tokens 1 and 2 are clipped
    x = logp.clone().requires_grad_()
    (g,) = torch.autograd.grad(policy_loss(x, old, ref, adv, mask, kl="k3", kl_coef=1.0, impl=impl)[0], x)
    # Clipped tokens and the clamped KL token get no gradient from those terms.
    assert g[0, 1] == 0 and g[0, 2] == 0
    torch.testing.assert_close(g[0, 0].cpu(), torch.tensor(-1.0 / 4))


@pytest.mark.parametrize("agg", AGGS)
def test_micro_batches_sum_to_full_batch_with_global_denominators(impl, agg):
    logp, old, ref, adv, mask = _batch(8, 21, seed=5)
    kw = dict(kl="k3", kl_coef=0.1, agg=agg, impl=impl)
    full, full_m, full_g = _loss_and_grad(policy_loss, logp, old, ref, adv, mask, **kw)
    n_tok, n_seq = mask.sum(), mask.shape[0]
    parts, grads, metr = [], [], {k: 0.0 for k in METRICS}
    for sl in (slice(0, 3), slice(3, 4), slice(4, 8)):  # uneven micro-batches, like two ranks x accum
        loss, m, g = _loss_and_grad(policy_loss, logp[sl], old[sl], ref[sl], adv[sl], mask[sl],
                                    global_tokens=n_tok, global_seqs=n_seq, **kw)
        parts.append(loss)
        grads.append(g)
        for k in METRICS:
            metr[k] = metr[k] + m[k]
    torch.testing.assert_close(sum(parts), full, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(torch.cat(grads), full_g, rtol=1e-6, atol=1e-9)
    for k in METRICS:
        torch.testing.assert_close(metr[k], full_m[k], rtol=1e-6, atol=1e-7, msg=k)


def test_empty_and_fully_masked_batches(impl):
    for B, T in [(0, 5), (3, 0), (3, 4)]:
        logp, old, ref, adv, mask = _batch(max(B, 1), max(T, 1))
        logp, old, ref, adv, mask = (t[:B, :T] for t in (logp, old, ref, adv, mask))
        mask = torch.zeros_like(mask)
        for agg in AGGS:
            loss, m, g = _loss_and_grad(policy_loss, logp, old, ref, adv, mask, kl="k1", kl_coef=0.1, agg=agg,
                                        impl=impl)
            assert loss.item() == 0.0 and all(v.item() == 0.0 for v in m.values())
            assert g.shape == (B, T) and torch.all(g == 0)


def test_repeated_backward_is_bitwise_equal(impl):
    logp, old, ref, adv, mask = _batch(6, 300)
    a = _loss_and_grad(policy_loss, logp, old, ref, adv, mask, kl="k3", kl_coef=0.01, impl=impl)
    b = _loss_and_grad(policy_loss, logp, old, ref, adv, mask, kl="k3", kl_coef=0.01, impl=impl)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])


def test_torch_path_gradcheck_float64():
    logp, old, ref, adv, mask = _batch(3, 6, dtype=torch.float64)
    for agg in AGGS:
        for kl in ("k1", "k2", "k3"):
            assert torch.autograd.gradcheck(
                lambda x: policy_loss(x, old, ref, adv, mask, kl=kl, kl_coef=0.3, agg=agg, impl="torch")[0],
                (logp.clone().requires_grad_(),),
            )


def test_errors():
    logp, old, ref, adv, mask = _batch(2, 3)
    with pytest.raises(ValueError, match="needs ref_logp"):
        policy_loss(logp, old, None, adv, mask, kl="k3")
    with pytest.raises(ValueError, match="agg='mean' is unknown"):
        policy_loss(logp, old, ref, adv, mask, agg="mean")
    with pytest.raises(ValueError, match="advantages has shape"):
        policy_loss(logp, old, ref, adv[:, :2], mask)
    # kl=None needs no reference at all
    loss, m = policy_loss(logp, old, None, adv, mask, kl=None)
    assert m["kl"].item() == 0.0


@pytest.mark.parametrize("impl_", ["torch", "triton"])
def test_per_sequence_advantages_equal_broadcast_ones(impl_):
    if impl_ == "triton" and impl_ not in IMPLS:
        pytest.skip("triton not installed")
    logp, old, ref, adv, mask = _batch(5, 11, seed=2)
    adv_B = adv[:, 0]
    a = _loss_and_grad(policy_loss, logp, old, ref, adv_B, mask, kl="k2", kl_coef=0.1, impl=impl_)
    b = _loss_and_grad(policy_loss, logp, old, ref, adv_B[:, None].expand_as(logp), mask, kl="k2", kl_coef=0.1,
                       impl=impl_)
    torch.testing.assert_close(a[0], b[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(a[2], b[2], rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_compiled_path_matches_float64():
    """impl="compile" (torch.compile of the fused PyTorch path; compiles once, ~15-60 s on CPU)."""
    logp, old, ref, adv, mask = _batch(6, 29, seed=4)
    for agg in ("token-mean", "seq-mean-token-mean"):
        kw = dict(kl="k3", kl_coef=0.05, agg=agg)
        got = _loss_and_grad(policy_loss, logp, old, ref, adv[:, 0], mask, impl="compile", **kw)
        want_b = _loss_and_grad(policy_loss_reference, logp.double(), old.double(), ref.double(),
                                adv[:, :1].double().expand_as(logp), mask, **kw)
        torch.testing.assert_close(got[0].double(), want_b[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got[2].double(), want_b[2], rtol=1e-5, atol=1e-7)
        for k in METRICS:
            torch.testing.assert_close(got[1][k].double(), want_b[1][k], rtol=1e-5, atol=1e-6, msg=k)


def test_no_grad_forward_gives_the_same_values(impl):
    logp, old, ref, adv, mask = _batch(4, 33, seed=9)
    with_grad = _loss_and_grad(policy_loss, logp, old, ref, adv, mask, kl="k3", kl_coef=0.1, impl=impl)
    with torch.no_grad():
        loss, m = policy_loss(logp, old, ref, adv, mask, kl="k3", kl_coef=0.1, impl=impl)
    assert torch.equal(loss, with_grad[0])
    for k in METRICS:
        assert torch.equal(m[k], with_grad[1][k]), k


def test_float_mask_weights_for_packed_tokens(impl):
    """Flat packed tokens with per-token weights: loss = sum_t w_t * l_t."""
    logp, old, ref, adv, _ = _batch(1, 50, seed=8)
    w = torch.rand(1, 50, device=logp.device) / 50
    got = _loss_and_grad(policy_loss, logp, old, ref, adv, w, kl="k3", kl_coef=0.1, global_tokens=1, impl=impl)
    per_tok = []
    for t in range(50):  # one token at a time, unit mask, then the weighted sum
        one = torch.zeros(1, 50, device=logp.device)
        one[0, t] = 1.0
        per_tok.append(policy_loss_reference(logp.double(), old.double(), ref.double(), adv.double(), one,
                                             kl="k3", kl_coef=0.1, global_tokens=1)[0])
    want = (torch.stack(per_tok) * w[0].double()).sum()
    torch.testing.assert_close(got[0].double(), want, rtol=1e-5, atol=1e-7)
