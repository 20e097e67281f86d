"""CUDA checks of the compiled Triton kernels (skipped without a GPU)."""

import pytest
import torch

from ifrl.kernels import fused_linear_logprobs, fused_linear_logprobs_reference, group_advantages, policy_loss

pytestmark = [pytest.mark.gpu, pytest.mark.kernels]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_fused_linear_logprobs_cuda(dtype):
    g = torch.Generator().manual_seed(0)
    N, H, V = 777, 512, 32003
    hidden = (torch.randn(N, H, generator=g) * 0.05).cuda().to(dtype).requires_grad_()
    weight = (torch.randn(V, H, generator=g) * 0.5).cuda().to(dtype).requires_grad_()
    labels = torch.randint(0, V, (N,), generator=g).cuda()
    labels[::7] = -100
    logp, ent = fused_linear_logprobs(hidden, weight, labels, 0.9, True)  # auto -> triton
    (logp.sum() + 0.5 * ent.sum()).backward()
    hd = hidden.detach().double().requires_grad_()
    wd = weight.detach().double().requires_grad_()
    lr, er = fused_linear_logprobs_reference(hd, wd, labels, 0.9, True)
    (lr.sum() + 0.5 * er.sum()).backward()
    torch.testing.assert_close(logp.double(), lr, rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(ent.double(), er, rtol=1e-4, atol=2e-4)
    tol = 3e-2 if dtype == torch.bfloat16 else 1e-4
    for got, want in ((hidden.grad, hd.grad), (weight.grad, wd.grad)):
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol * want.abs().max().item())


def test_loss_and_advantages_cuda():
    B, T = 64, 300
    r = torch.rand(B, device="cuda")
    torch.testing.assert_close(group_advantages(r, 8), group_advantages(r.cpu(), 8, impl="torch").cuda())
    valid = torch.rand(B, device="cuda") > 0.3
    torch.testing.assert_close(group_advantages(r, 8, valid_B=valid),
                               group_advantages(r.cpu(), 8, valid_B=valid.cpu(), impl="torch").cuda())
    logp = -torch.rand(B, T, device="cuda")
    old = logp + 0.1 * torch.randn_like(logp)
    ref = logp + 0.1 * torch.randn_like(logp)
    mask = (torch.rand(B, T, device="cuda") > 0.2).float()
    x = logp.clone().requires_grad_()
    loss, m = policy_loss(x, old, ref, r, mask, kl="k3", kl_coef=0.01)
    loss.backward()
    xr = logp.double().requires_grad_()
    lref, mref = policy_loss(xr, old.double(), ref.double(), r.double(), mask, kl="k3", kl_coef=0.01, impl="reference")
    lref.backward()
    torch.testing.assert_close(loss.double(), lref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-8)
