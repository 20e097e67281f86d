import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ifrl.kernels import IGNORE_INDEX, fused_linear_logprobs, fused_linear_logprobs_reference

from .conftest import device

pytestmark = pytest.mark.kernels

# (N, H, V): none a multiple of the Triton blocks (32 rows, 64 vocab, 32/64 hidden) nor of the
# torch tiles chosen below.
SHAPES = [(37, 24, 101), (1, 16, 7), (70, 40, 130)]


def _inputs(N, H, V, dtype=torch.float32, ignore=(3,), seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(N, H, generator=g) * 0.7
    weight = torch.randn(V, H, generator=g) * 0.7
    labels = torch.randint(0, V, (N,), generator=g)
    for i in ignore:
        if i < N:
            labels[i] = IGNORE_INDEX
    dev = device()
    return hidden.to(dev, dtype), weight.to(dev, dtype), labels.to(dev)


def _run(fn, hidden, weight, labels, up, up_e, **kw):
    """Values and grads of sum(up * logp + up_e * entropy)."""
    h = hidden.detach().clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    logp, ent = fn(h, w, labels, return_entropy=True, **kw)
    (logp * up.to(logp.dtype)).sum().add((ent * up_e.to(ent.dtype)).sum()).backward()
    return logp.detach(), ent.detach(), h.grad, w.grad


def _f64(hidden, weight, labels, up, up_e, temperature):
    # The oracle sees exactly the (possibly bf16-rounded) inputs, in float64.
    return _run(fused_linear_logprobs_reference, hidden.double(), weight.double(), labels, up, up_e,
                temperature=temperature)


@pytest.mark.parametrize("N,H,V", SHAPES)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_matches_float64_values_and_grads(impl, N, H, V, temperature):
    hidden, weight, labels = _inputs(N, H, V)
    g = torch.Generator().manual_seed(1)
    up = torch.randn(N, generator=g).to(hidden.device)
    up_e = torch.randn(N, generator=g).to(hidden.device)
    ref = _f64(hidden, weight, labels, up, up_e, temperature)
    # Small tiles force several row blocks and vocab tiles, with ragged last tiles.
    out = _run(fused_linear_logprobs, hidden, weight, labels, up, up_e, temperature=temperature, impl=impl,
               chunk_bytes=4 * 9 * 40, vocab_tile=40)
    assert out[0].dtype == torch.float32 and out[1].dtype == torch.float32
    for got, want, name in zip(out, ref, ["logp", "entropy", "grad_hidden", "grad_weight"]):
        assert got.shape == want.shape, name
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=2e-5, msg=name)


@pytest.mark.parametrize("return_entropy", [False, True])
@pytest.mark.parametrize("chunk_bytes,vocab_tile,ignore", [
    (4 * 40 * 9, 9, (3,)),  # tiles taller than wide (row-major storage), ragged last row block
    (4 * 9 * 40, 40, (0, 1, 2, 3, 30, 69)),  # wide tiles (column-major storage), many ignored rows
    (64 * 1024 * 1024, None, (3,)),  # the default tile shape: one row block, vocab widened to V
])
def test_torch_tile_layouts_match_float64(return_entropy, chunk_bytes, vocab_tile, ignore):
    N, H, V = 70, 40, 130
    hidden, weight, labels = _inputs(N, H, V, ignore=ignore)
    g = torch.Generator().manual_seed(2)
    up = torch.randn(N, generator=g).to(hidden.device)
    up_e = torch.randn(N, generator=g).to(hidden.device) if return_entropy else torch.zeros(N, device=hidden.device)
    ref = _f64(hidden, weight, labels, up, up_e, 0.8)
    out = _run(fused_linear_logprobs, hidden, weight, labels, up, up_e, temperature=0.8, impl="torch",
               chunk_bytes=chunk_bytes, vocab_tile=vocab_tile)
    for got, want, name in zip(out, ref, ["logp", "entropy", "grad_hidden", "grad_weight"]):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=2e-5, msg=name)


@pytest.mark.parametrize("gemm", ["onednn", "torch.mm"])
@pytest.mark.parametrize("return_entropy", [False, True])
@pytest.mark.parametrize("chunk_bytes,vocab_tile", [(4 * 40 * 9, 9), (4 * 9 * 40, 40), (64 * 1024 * 1024, None)])
def test_cpu_gemm_backends_match_float64(gemm, return_entropy, chunk_bytes, vocab_tile):
    """The CPU fp32 path through oneDNN (the default where torch has it) and through torch.mm
    (``IFRL_CPU_GEMM=torch``) both match float64, and each other to fp32 rounding."""
    from ifrl_kernels._cpu_gemm import onednn_available, torch_mm_only

    if gemm == "onednn" and not onednn_available():
        pytest.skip("this torch build has no oneDNN linear op")
    N, H, V = 70, 40, 130
    hidden, weight, labels = (t.cpu() for t in _inputs(N, H, V, ignore=(0, 5, 69)))
    g = torch.Generator().manual_seed(3)
    up, up_e = torch.randn(N, generator=g), (torch.randn(N, generator=g) if return_entropy else torch.zeros(N))
    ref = _run(fused_linear_logprobs_reference, hidden.double(), weight.double(), labels, up, up_e, temperature=0.9)
    run = lambda: _run(fused_linear_logprobs, hidden, weight, labels, up, up_e, temperature=0.9,  # noqa: E731
                       impl="torch", chunk_bytes=chunk_bytes, vocab_tile=vocab_tile)
    if gemm == "torch.mm":
        with torch_mm_only():
            out = run()
    else:
        out = run()
    for got, want, name in zip(out, ref, ["logp", "entropy", "grad_hidden", "grad_weight"]):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=2e-5, msg=name)


def test_torch_tile_shape_defaults():
    from ifrl_kernels.fused_linear_logprobs import _torch_tile_shape

    mib64 = 64 * 1024 * 1024
    assert _torch_tile_shape(8192, 32768, mib64, None) == (8192, 2048)  # tall: 8192 rows x 2048 vocab
    assert _torch_tile_shape(20000, 152064, mib64, None) == (8192, 2048)  # several row blocks
    assert _torch_tile_shape(2048, 32768, mib64, None) == (2048, 8192)  # all rows fit: vocab widened
    assert _torch_tile_shape(10, 50, mib64, None) == (10, 50)
    assert _torch_tile_shape(300, 2000, 4 * 16384, 500) == (32, 500)  # an explicit vocab tile is kept


def test_ignored_rows_ignore_nonfinite_upstream_gradients():
    """Ignored rows are dropped before any arithmetic: inf/nan upstream gradients there change nothing."""
    hidden, weight, labels = _inputs(30, 16, 50, ignore=(0, 7, 29))
    ignored = labels == IGNORE_INDEX
    up = torch.linspace(-1, 1, 30, device=hidden.device)
    bad = torch.where(ignored, torch.tensor([float("inf"), float("nan"), -float("inf")]).repeat(10)[:30], up)
    clean = _run(fused_linear_logprobs, hidden, weight, labels, up * ~ignored, up * ~ignored, impl="torch")
    dirty = _run(fused_linear_logprobs, hidden, weight, labels, bad, bad, impl="torch")
    for a, b in zip(clean, dirty):
        assert torch.equal(a, b)
    assert torch.all(dirty[2][ignored] == 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_accumulate_in_fp32(impl, dtype):
    hidden, weight, labels = _inputs(37, 48, 101, dtype=dtype)
    up = torch.ones(37, device=hidden.device)
    up_e = torch.full((37,), 0.5, device=hidden.device)
    ref = _f64(hidden, weight, labels, up, up_e, 1.0)
    logp, ent, gh, gw = _run(fused_linear_logprobs, hidden, weight, labels, up, up_e, impl=impl,
                             chunk_bytes=4 * 16 * 64, vocab_tile=64)
    assert logp.dtype == torch.float32 and gh.dtype == dtype and gw.dtype == dtype
    # Values: fp32 accumulation of exactly-representable products -> fp32-level error, not bf16-level.
    torch.testing.assert_close(logp.double(), ref[0], rtol=1e-5, atol=5e-5)
    torch.testing.assert_close(ent.double(), ref[1], rtol=1e-5, atol=5e-5)
    # Gradients are returned in the input dtype, so they carry its rounding (and the Triton
    # backward feeds dL/dlogits to the GEMMs in the input dtype).
    tol = 2e-2 if dtype == torch.bfloat16 else 3e-3
    torch.testing.assert_close(gh.double(), ref[2], rtol=tol, atol=tol * ref[2].abs().max().item())
    torch.testing.assert_close(gw.double(), ref[3], rtol=tol, atol=tol * ref[3].abs().max().item())


def test_ignored_rows_are_zero_and_get_no_gradient(impl):
    hidden, weight, labels = _inputs(20, 16, 50, ignore=(0, 5, 19))
    up = torch.ones(20, device=hidden.device)
    logp, ent, gh, gw = _run(fused_linear_logprobs, hidden, weight, labels, up, up, impl=impl)
    ignored = labels == IGNORE_INDEX
    assert int(ignored.sum()) == 3
    assert torch.all(logp[ignored] == 0) and torch.all(ent[ignored] == 0)
    assert torch.all(gh[ignored] == 0)
    assert torch.all(logp[~ignored] < 0) and torch.all(ent[~ignored] > 0)
    # All rows ignored: zero everywhere, including the weight gradient.
    all_ign = torch.full_like(labels, IGNORE_INDEX)
    logp, ent, gh, gw = _run(fused_linear_logprobs, hidden, weight, all_ign, up, up, impl=impl)
    assert torch.all(logp == 0) and torch.all(gh == 0) and torch.all(gw == 0)


def test_empty_batch(impl):
    hidden, weight, labels = _inputs(0, 16, 33)
    up = torch.ones(0, device=hidden.device)
    logp, ent, gh, gw = _run(fused_linear_logprobs, hidden, weight, labels, up, up, impl=impl)
    assert logp.shape == (0,) and ent.shape == (0,) and gh.shape == (0, 16)
    assert torch.all(gw == 0)


def test_logprobs_only_and_int32_labels(impl):
    hidden, weight, labels = _inputs(33, 16, 77)
    h = hidden.clone().requires_grad_()
    logp = fused_linear_logprobs(h, weight, labels.int(), impl=impl)
    assert isinstance(logp, torch.Tensor) and logp.shape == (33,)
    want = fused_linear_logprobs_reference(hidden.double(), weight.double(), labels)
    torch.testing.assert_close(logp.double(), want, rtol=1e-5, atol=2e-5)
    logp.sum().backward()
    hd = hidden.double().requires_grad_()
    fused_linear_logprobs_reference(hd, weight.double(), labels).sum().backward()
    torch.testing.assert_close(h.grad.double(), hd.grad, rtol=1e-5, atol=2e-5)


def test_repeated_backward_is_bitwise_equal(impl):
    hidden, weight, labels = _inputs(45, 24, 99)
    up = torch.linspace(-1, 1, 45, device=hidden.device)
    grads = [
        _run(fused_linear_logprobs, hidden, weight, labels, up, up.flip(0), impl=impl, chunk_bytes=4 * 8 * 32,
             vocab_tile=32)
        for _ in range(2)
    ]
    for a, b in zip(grads[0], grads[1]):
        assert torch.equal(a, b)


def test_torch_path_gradcheck_float64():
    hidden, weight, labels = _inputs(9, 5, 13, dtype=torch.float64)
    h = hidden.requires_grad_()
    w = weight.requires_grad_()

    def f(h, w):
        return fused_linear_logprobs(h, w, labels, 0.8, True, impl="torch", chunk_bytes=8 * 4 * 6, vocab_tile=6)

    assert torch.autograd.gradcheck(f, (h, w))
    assert torch.autograd.gradgradcheck is not None  # first order is what RL needs; second order is not supported


def test_auto_dispatch_and_errors():
    hidden, weight, labels = _inputs(4, 8, 10)
    auto = fused_linear_logprobs(hidden, weight, labels)
    forced = fused_linear_logprobs(hidden, weight, labels, impl="triton" if hidden.is_cuda else "torch")
    assert torch.equal(auto, forced)
    with pytest.raises(ValueError, match="impl='cuda' is unknown|impl="):
        fused_linear_logprobs(hidden, weight, labels, impl="cuda")
    with pytest.raises(ValueError, match="H=8 but weight has H=9"):
        fused_linear_logprobs(hidden, torch.randn(10, 9, device=hidden.device), labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        fused_linear_logprobs(hidden, weight, labels[:3])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        fused_linear_logprobs(hidden, weight, labels, temperature=0.0)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("return_entropy", [False, True])
def test_torch_path_never_materialises_logits(return_entropy):
    """Nothing of size N x V is ever created; the biggest tensors are the inputs' gradients."""
    N, H, V = 300, 16, 2000
    hidden, weight, labels = _inputs(N, H, V)
    hidden, weight, labels = hidden.cpu().requires_grad_(), weight.cpu().requires_grad_(), labels.cpu()
    tile_elems = 64 * 1024 // 4
    with _LargestTensor() as mode:
        out = fused_linear_logprobs(hidden, weight, labels, impl="torch", return_entropy=return_entropy,
                                    chunk_bytes=4 * tile_elems, vocab_tile=500)
        loss = out[0].sum() + out[1].sum() if return_entropy else out.sum()
        loss.backward()
    assert mode.largest <= max(V * H, tile_elems), (mode.largest, N * V)
    with _LargestTensor() as naive:
        fused_linear_logprobs(hidden, weight, labels, impl="reference").sum().backward()
    assert naive.largest >= N * V  # the oracle does materialise them: the check can tell


def test_frozen_head_gets_no_weight_gradient(impl):
    hidden, weight, labels = _inputs(21, 16, 45)
    h = hidden.clone().requires_grad_()
    fused_linear_logprobs(h, weight, labels, impl=impl).sum().backward()
    hd = hidden.double().requires_grad_()
    fused_linear_logprobs_reference(hd, weight.double(), labels).sum().backward()
    assert weight.grad is None
    torch.testing.assert_close(h.grad.double(), hd.grad, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("return_entropy", [False, True])
def test_opcheck_registered_ops(impl, return_entropy):
    """torch.library.opcheck: schema, fake (meta) kernels, autograd registration, AOT dispatch."""
    hidden, weight, labels = _inputs(13, 16, 37)
    args = (hidden.requires_grad_(), weight.requires_grad_(), labels, 0.9, return_entropy, impl, 4 * 4 * 16, 16)
    torch.library.opcheck(torch.ops.ifrl.fused_linear_logprobs_fwd.default, args)
    lse = torch.zeros(13, device=hidden.device)
    g = torch.randn(13, device=hidden.device)
    bargs = (hidden.detach(), weight.detach(), labels, lse, lse.clone(), g, g.clone(), 0.9, impl, 4 * 4 * 16, 16,
             return_entropy, True, True)
    torch.library.opcheck(torch.ops.ifrl.fused_linear_logprobs_bwd.default, bargs)
