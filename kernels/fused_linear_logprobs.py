"""Fused ``log_softmax(hidden @ weight.T / T)[label]`` (and entropy) without [N, V] logits.

The LM head of a 7B model turns 32k tokens into 19.9 GB of fp32 logits; RL only needs one
log-prob (and maybe the entropy) per token. Every path here walks the vocabulary in tiles:

* forward: an online log-sum-exp over vocab tiles keeps, per row, the running max ``m``, the
  sum ``s = sum exp(z - m)``, the entropy numerator ``t = sum exp(z - m) * z`` and the label
  logit; then ``lse = m + log s``, ``logp = z_label - lse``, ``entropy = lse - t / s``;
* backward: the logits of one (rows x vocab) tile are recomputed, turned into
  ``dL/dz = g * (onehot - p) - ge * p * (log p + H)`` in place, and multiplied into the
  gradients of ``hidden`` and ``weight``; tiles are visited in a fixed order, so repeated
  backward passes are bitwise equal (no atomics);
* the torch path drops ignored rows (label -100) before any GEMM: they give 0 and get no
  gradient, so padding and masked prompt tokens cost no matrix work.

Paths: ``fused_linear_logprobs_reference`` (materialises logits; the test oracle),
the ``torch`` path (tiled PyTorch, the CPU runtime; memory bounded by ``chunk_bytes``) and the
``triton`` path (a fused forward kernel that never writes logits; the backward recomputes each
tile's logits and gradient in one Triton kernel and leaves the two GEMMs to cuBLAS).
"""

from __future__ import annotations

import torch

from ._cpu_gemm import mm_nt, onednn_for
from ._impl import HAS_TRITON, resolve_impl, tl, triton, triton_interpreting

IGNORE_INDEX = -100

# Bytes of one fp32 logits tile. The torch path keeps one such buffer live (two with the
# entropy), so its transient memory is about chunk_bytes plus the fp32 gradient accumulators.
DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024
# Vocab tile width of the Triton backward's dL/dlogits buffer.
DEFAULT_VOCAB_TILE = 8192
# Vocab tile width of the torch path: 8192 rows x 2048 vocab fill the 64 MiB budget. Tall row
# blocks, one per 8192 tokens, keep the weight-gradient GEMM's inner dimension long; widened
# when all rows fit in fewer (see _torch_tile_shape).
TORCH_VOCAB_TILE = 2048


def _check_inputs(hidden_NH: torch.Tensor, weight_VH: torch.Tensor, labels_N: torch.Tensor, temperature: float):
    if hidden_NH.dim() != 2 or weight_VH.dim() != 2:
        raise ValueError(
            f"fused_linear_logprobs: hidden must be [N, H] and weight [V, H]; got {tuple(hidden_NH.shape)} and "
            f"{tuple(weight_VH.shape)}; flatten batch and time first (hidden.reshape(-1, H))"
        )
    if hidden_NH.shape[1] != weight_VH.shape[1]:
        raise ValueError(
            f"fused_linear_logprobs: hidden has H={hidden_NH.shape[1]} but weight has H={weight_VH.shape[1]}; "
            "pass lm_head.weight of shape [vocab, hidden]"
        )
    if labels_N.shape != (hidden_NH.shape[0],):
        raise ValueError(
            f"fused_linear_logprobs: labels must have shape [N]={hidden_NH.shape[0]}, got {tuple(labels_N.shape)}; "
            "flatten them like hidden"
        )
    if labels_N.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"fused_linear_logprobs: labels must be int64 or int32, got {labels_N.dtype}; use labels.long()")
    if not (temperature > 0):
        raise ValueError(f"fused_linear_logprobs: temperature must be > 0, got {temperature}; use 1.0 for none")


def _acc_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


# ----------------------------------------------------------------------------- reference


def fused_linear_logprobs_reference(
    hidden_NH: torch.Tensor,
    weight_VH: torch.Tensor,
    labels_N: torch.Tensor,
    temperature: float = 1.0,
    return_entropy: bool = False,
):
    """Materialised-logits version: the obviously correct oracle (O(N*V) memory).

    Returns float32 (float64 for float64 inputs); ignored rows (label -100) give 0.
    """
    _check_inputs(hidden_NH, weight_VH, labels_N, temperature)
    acc = _acc_dtype(hidden_NH)
    logits_NV = (hidden_NH.to(acc) @ weight_VH.to(acc).T) / temperature
    logp_NV = torch.log_softmax(logits_NV, dim=-1)
    valid_N = labels_N != IGNORE_INDEX
    safe_N = torch.where(valid_N, labels_N, 0).long()
    logp_N = logp_NV.gather(1, safe_N[:, None]).squeeze(1)
    zero = torch.zeros((), dtype=acc, device=hidden_NH.device)
    logp_N = torch.where(valid_N, logp_N, zero)
    if not return_entropy:
        return logp_N
    entropy_N = -(logp_NV.exp() * logp_NV).sum(-1)
    return logp_N, torch.where(valid_N, entropy_N, zero)


# ----------------------------------------------------------------------------- torch path


def _tiles(n: int, step: int):
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def _tile_shape(N: int, V: int, chunk_bytes: int, vocab_tile: int | None) -> tuple[int, int]:
    vt = max(1, min(V, vocab_tile or DEFAULT_VOCAB_TILE))
    rows = max(1, min(max(N, 1), chunk_bytes // (4 * vt)))
    return rows, vt


def _torch_tile_shape(N: int, V: int, chunk_bytes: int, vocab_tile: int | None) -> tuple[int, int]:
    """(rows, vocab) of a torch-path tile: as many rows as the budget allows at TORCH_VOCAB_TILE,
    the vocab tile widened when all N rows fit (fewer, larger GEMMs)."""
    if vocab_tile:
        return _tile_shape(N, V, chunk_bytes, vocab_tile)
    elems = max(1, chunk_bytes // 4)
    vt = max(1, min(V, TORCH_VOCAB_TILE))
    if N * vt < elems:
        vt = max(vt, min(V, elems // max(N, 1) // 256 * 256))
    return max(1, min(max(N, 1), elems // vt)), vt


def _tile_view(buf: torch.Tensor, nr: int, nv: int) -> torch.Tensor:
    """A [nr, nv] logits tile in ``buf``, stored so that its longer side is the outer one.

    MKL's fp32 ``h @ w.T`` (2 AVX2 threads, H=1024) ran 1.1-1.3x faster into an output taller
    than wide than into a wide one of the same flops: 8192x2048 row-major vs column-major, and
    2048x8192 the other way round. A wide tile is therefore kept column-major (a transposed
    view of a [nv, nr] buffer); every op reads the tile through the view, and the backward
    GEMMs take it with either stride.
    """
    if nr >= nv:
        return buf[: nr * nv].view(nr, nv)
    return buf[: nr * nv].view(nv, nr).T


def _valid_rows(labels_N: torch.Tensor) -> torch.Tensor | None:
    """Indices of the rows with a label, or None when no row is ignored."""
    valid_N = labels_N != IGNORE_INDEX
    return None if bool(valid_N.all()) else valid_N.nonzero().squeeze(1)


def _scatter_rows(x: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    return x.new_zeros((n, *x.shape[1:])).index_copy_(0, idx, x)


def _torch_logits_tile(h, w, inv_t, buf, neg_lse=None):
    """``h @ w.T * inv_t`` (``+ neg_lse`` per row when given: the tile's log p) as an [nr, nv] tile.

    oneDNN (CPU fp32) returns a fresh tensor; otherwise the product lands in ``buf`` (a tall or
    column-major view, see ``_tile_view``) and ``neg_lse`` is folded in as the GEMM's C operand.
    """
    if onednn_for(h.device, h.dtype):
        # Computed as the contiguous [nv, nr] product w @ h.T and returned as its transposed
        # view: the weight-gradient GEMM then reads the tile contiguously (measured 350 vs
        # 200 GFLOP/s for a strided tile), the hidden-gradient one reads it with MKL's
        # transpose flag, and elementwise ops do not care.
        z = mm_nt(w, h).T
        if inv_t != 1.0:
            z.mul_(inv_t)
        return z if neg_lse is None else z.add_(neg_lse)
    z = _tile_view(buf, h.shape[0], w.shape[0])
    if neg_lse is not None:
        z.copy_(neg_lse.expand(z.shape))
        return z.addmm_(h, w.T, alpha=inv_t)
    if inv_t != 1.0:
        return torch.addmm(z, h, w.T, beta=0, alpha=inv_t, out=z)
    return torch.mm(h, w.T, out=z)


def _sub_product(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, first: bool, b_t: torch.Tensor | None = None) -> None:
    """``c = -(a @ b)`` when ``first``, else ``c -= a @ b``.

    With ``b_t`` (``b.T``, contiguous; given on the oneDNN path) the product goes through oneDNN
    into a temporary; otherwise MKL's ``addmm_`` accumulates in place.
    """
    if b_t is not None:
        r = mm_nt(a.contiguous(), b_t)
        if first:
            torch.neg(r, out=c)
        else:
            c.sub_(r)
    else:
        c.addmm_(a, b, beta=0.0 if first else 1.0, alpha=-1.0)


def _torch_forward(hidden_NH, weight_VH, labels_N, inv_t, want_entropy, rows, vt):
    # Ignored rows (label -100) give 0 and get no gradient: no GEMM work is spent on them.
    idx = _valid_rows(labels_N)
    if idx is None:
        return _torch_forward_rows(hidden_NH, weight_VH, labels_N, inv_t, want_entropy, rows, vt)
    out = _torch_forward_rows(hidden_NH.index_select(0, idx), weight_VH, labels_N.index_select(0, idx), inv_t,
                              want_entropy, rows, vt)
    return tuple(None if x is None else _scatter_rows(x, idx, labels_N.shape[0]) for x in out)


def _torch_backward(hidden_NH, weight_VH, labels_N, lse_N, ent_N, g_N, ge_N, inv_t, rows, vt, need_h, need_w):
    idx = _valid_rows(labels_N)
    if idx is None:
        return _torch_backward_rows(hidden_NH, weight_VH, labels_N, lse_N, ent_N, g_N, ge_N, inv_t, rows, vt,
                                    need_h, need_w)
    pick = lambda x: None if x is None else x.index_select(0, idx)  # noqa: E731
    grad_h, grad_w = _torch_backward_rows(pick(hidden_NH), weight_VH, pick(labels_N), pick(lse_N), pick(ent_N),
                                          pick(g_N), pick(ge_N), inv_t, rows, vt, need_h, need_w)
    if need_h:
        grad_h = _scatter_rows(grad_h, idx, labels_N.shape[0])
    return grad_h, grad_w


def _torch_forward_rows(hidden_NH, weight_VH, labels_N, inv_t, want_entropy, rows, vt):
    """The forward on rows that all have a label."""
    N, V = hidden_NH.shape[0], weight_VH.shape[0]
    acc = _acc_dtype(hidden_NH)
    dev = hidden_NH.device
    lse_N = torch.empty(N, dtype=acc, device=dev)
    logp_N = torch.empty(N, dtype=acc, device=dev)
    ent_N = torch.empty(N, dtype=acc, device=dev) if want_entropy else None
    labels_N = labels_N.long()
    z_buf = None if onednn_for(dev, acc) else torch.empty(rows * vt, dtype=acc, device=dev)
    e_buf = torch.empty(rows * vt, dtype=acc, device=dev) if want_entropy else None
    # Views, converted per tile: an fp32 copy of a bf16 vocab would cost 2x the weight.
    w_tiles = [(v0, v1, weight_VH[v0:v1]) for v0, v1 in _tiles(V, vt)]
    for n0, n1 in _tiles(N, rows):
        h = hidden_NH[n0:n1].to(acc)
        lab = labels_N[n0:n1]
        nr = n1 - n0
        m = torch.full((nr,), float("-inf"), dtype=acc, device=dev)
        s = torch.zeros(nr, dtype=acc, device=dev)
        t = torch.zeros(nr, dtype=acc, device=dev) if want_entropy else None
        zl = torch.zeros(nr, dtype=acc, device=dev)
        for v0, v1, w in w_tiles:
            w = w.to(acc)
            z = _torch_logits_tile(h, w, inv_t, z_buf)
            rows_in = ((lab >= v0) & (lab < v1)).nonzero().squeeze(1)
            if rows_in.numel():
                zl[rows_in] = z[rows_in, lab[rows_in] - v0]
            m_new = torch.maximum(m, z.amax(dim=1))
            scale = torch.exp(m - m_new)
            if want_entropy:
                e = torch.sub(z, m_new[:, None], out=_tile_view(e_buf, nr, v1 - v0)).exp_()
                s = s * scale + e.sum(1)
                t = t * scale + e.mul_(z).sum(1)
            else:
                s = s * scale + z.sub_(m_new[:, None]).exp_().sum(1)
            m = m_new
            del z  # a oneDNN tile is a fresh tensor: free it before the next one is made
        lse = m + torch.log(s)
        lse_N[n0:n1] = lse
        logp_N[n0:n1] = zl - lse
        if want_entropy:
            ent_N[n0:n1] = lse - t / s
    return logp_N, ent_N, lse_N


def _torch_backward_rows(hidden_NH, weight_VH, labels_N, lse_N, ent_N, g_N, ge_N, inv_t, rows, vt, need_h, need_w):
    """Recompute logits tile by tile and accumulate dL/dhidden and dL/dweight in fixed order
    (rows that all have a label).

    Without the entropy term dL/dz = g * (onehot - p) factors per row, so the tile only holds
    ``p - onehot`` (one exp pass after a GEMM that already subtracts lse) and ``g`` goes into
    the small operands: dL/dh = g * ((onehot - p) @ W), dL/dW = (onehot - p).T @ (g * h).
    The first product into each gradient block overwrites it (beta=0): no zero fill, no read.
    """
    N, V = hidden_NH.shape[0], weight_VH.shape[0]
    acc = _acc_dtype(hidden_NH)
    dev = hidden_NH.device
    new = torch.zeros if N == 0 or V == 0 else torch.empty
    grad_h = new(hidden_NH.shape, dtype=acc, device=dev) if need_h else None
    grad_w = new(weight_VH.shape, dtype=acc, device=dev) if need_w else None
    labels_N = labels_N.long()
    g_N = g_N.to(acc) * inv_t
    if ge_N is not None:
        ge_N = ge_N.to(acc) * inv_t
    z_buf = None if onednn_for(dev, acc) else torch.empty(rows * vt, dtype=acc, device=dev)
    p_buf = torch.empty(rows * vt, dtype=acc, device=dev) if ge_N is not None else None
    # Views, converted per tile: an fp32 copy of a bf16 vocab would cost 2x the weight.
    w_tiles = [(v0, v1, weight_VH[v0:v1]) for v0, v1 in _tiles(V, vt)]
    for bi, (n0, n1) in enumerate(_tiles(N, rows)):
        h = hidden_NH[n0:n1].to(acc)
        lab = labels_N[n0:n1]
        nr = n1 - n0
        neg_lse = -lse_N[n0:n1, None]
        g = g_N[n0:n1, None]
        h_rhs = h_rhs_t = None  # the weight-gradient GEMM's right operand (oneDNN takes it transposed)
        if ge_N is not None:
            ge, ent = ge_N[n0:n1, None], ent_N[n0:n1, None]
        if need_w:
            scale = g if ge_N is None else None  # without the entropy, g folds into this operand
            if onednn_for(dev, acc):
                h_rhs_t = torch.empty(h.shape[1], nr, dtype=acc, device=dev)
                if scale is not None:
                    torch.mul(h.T, scale.T, out=h_rhs_t)
                else:
                    h_rhs_t.copy_(h.T)
            else:
                h_rhs = h * scale if scale is not None else h
        for vi, (v0, v1, w) in enumerate(w_tiles):
            w = w.to(acc)
            nv = v1 - v0
            z = _torch_logits_tile(h, w, inv_t, z_buf, neg_lse)  # log p
            rows_in = ((lab >= v0) & (lab < v1)).nonzero().squeeze(1)
            cols_in = lab[rows_in] - v0
            if ge_N is None:
                z.exp_()  # p
                z[rows_in, cols_in] -= 1.0  # p - onehot
            else:
                p = torch.exp(z, out=_tile_view(p_buf, nr, nv))
                # p * (g + ge * (log p + H)) - g * onehot = -dL/dz
                z.add_(ent).mul_(ge).add_(g).mul_(p)
                z[rows_in, cols_in] -= g[rows_in, 0]
            if need_h:
                _sub_product(grad_h[n0:n1], z, w, vi == 0)
            if need_w:
                _sub_product(grad_w[v0:v1], z.T, h_rhs, bi == 0, h_rhs_t)
            del z
        if need_h and ge_N is None:
            grad_h[n0:n1].mul_(g)
    return grad_h, grad_w


# ----------------------------------------------------------------------------- triton path

if HAS_TRITON:

    @triton.jit
    def _logits_tile(
        h_ptr, w_ptr, offs_n, offs_v, row_ok, col_ok, H, stride_hn, stride_wv,
        BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr,
        PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    ):
        # hidden[rows] @ weight[cols].T for one (rows x vocab) tile, accumulated in fp32 over H.
        # Shared by the forward and the backward, which must recompute bit-identical logits.
        offs_k0 = tl.arange(0, BLOCK_K)
        acc = tl.zeros((BLOCK_N, BLOCK_V), tl.float32)
        for k0 in range(0, H, BLOCK_K):
            offs_k = k0 + offs_k0
            k_ok = offs_k < H
            a = tl.load(h_ptr + offs_n[:, None].to(tl.int64) * stride_hn + offs_k[None, :],
                        mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            b = tl.load(w_ptr + offs_v[:, None].to(tl.int64) * stride_wv + offs_k[None, :],
                        mask=col_ok[:, None] & k_ok[None, :], other=0.0)
            if UPCAST:
                a = a.to(tl.float32)
                b = b.to(tl.float32)
            acc = tl.dot(a, tl.trans(b), acc, input_precision=PRECISION)
        return acc

    @triton.jit
    def _flp_fwd_kernel(
        h_ptr, w_ptr, lab_ptr, logp_ptr, lse_ptr, ent_ptr,
        N, V, H, stride_hn, stride_wv, inv_t,
        IGNORE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr,
        WANT_ENT: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    ):
        pid = tl.program_id(0)
        offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = offs_n < N
        lab = tl.load(lab_ptr + offs_n, mask=row_ok, other=IGNORE).to(tl.int64)
        m = tl.full((BLOCK_N,), float("-inf"), tl.float32)
        s = tl.zeros((BLOCK_N,), tl.float32)
        t = tl.zeros((BLOCK_N,), tl.float32)
        zl = tl.zeros((BLOCK_N,), tl.float32)
        for v0 in range(0, V, BLOCK_V):
            offs_v = v0 + tl.arange(0, BLOCK_V)
            col_ok = offs_v < V
            acc = _logits_tile(h_ptr, w_ptr, offs_n, offs_v, row_ok, col_ok, H, stride_hn, stride_wv,
                               BLOCK_N, BLOCK_V, BLOCK_K, PRECISION, UPCAST)
            z = tl.where(col_ok[None, :], acc * inv_t, float("-inf"))
            m_new = tl.maximum(m, tl.max(z, axis=1))
            scale = tl.exp(m - m_new)
            e = tl.exp(z - m_new[:, None])
            s = s * scale + tl.sum(e, axis=1)
            if WANT_ENT:
                t = t * scale + tl.sum(tl.where(col_ok[None, :], e * z, 0.0), axis=1)
            zl += tl.sum(tl.where(offs_v[None, :] == lab[:, None], z, 0.0), axis=1)
            m = m_new
        lse = m + tl.log(s)
        valid = lab != IGNORE
        tl.store(lse_ptr + offs_n, lse, mask=row_ok)
        tl.store(logp_ptr + offs_n, tl.where(valid, zl - lse, 0.0), mask=row_ok)
        if WANT_ENT:
            tl.store(ent_ptr + offs_n, tl.where(valid, lse - t / s, 0.0), mask=row_ok)

    @triton.jit
    def _flp_grad_logits_kernel(
        h_ptr, w_ptr, lab_ptr, lse_ptr, ent_ptr, g_ptr, ge_ptr, out_ptr,
        N, V, H, v_off, stride_hn, stride_wv, stride_on, inv_t,
        IGNORE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr,
        HAS_GE: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    ):
        # One (rows x vocab) tile of dL/dlogits, recomputed from hidden and weight and written
        # to out (a chunk buffer, not [N, V]); cuBLAS then applies it to both inputs.
        pid_n = tl.program_id(0)
        pid_v = tl.program_id(1)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_v = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
        row_ok = offs_n < N
        col_ok = offs_v < V
        acc = _logits_tile(h_ptr, w_ptr, offs_n, offs_v, row_ok, col_ok, H, stride_hn, stride_wv,
                           BLOCK_N, BLOCK_V, BLOCK_K, PRECISION, UPCAST)
        lab = tl.load(lab_ptr + offs_n, mask=row_ok, other=IGNORE).to(tl.int64)
        valid = row_ok & (lab != IGNORE)
        lse = tl.load(lse_ptr + offs_n, mask=row_ok, other=0.0)
        g = tl.where(valid, tl.load(g_ptr + offs_n, mask=row_ok, other=0.0), 0.0) * inv_t
        logp = acc * inv_t - lse[:, None]
        p = tl.exp(logp)
        coef = g[:, None] + tl.zeros((BLOCK_N, BLOCK_V), tl.float32)
        if HAS_GE:
            ge = tl.where(valid, tl.load(ge_ptr + offs_n, mask=row_ok, other=0.0), 0.0) * inv_t
            ent = tl.load(ent_ptr + offs_n, mask=row_ok, other=0.0)
            coef += ge[:, None] * (logp + ent[:, None])
        grad = tl.where(offs_v[None, :] + v_off == lab[:, None], g[:, None], 0.0) - p * coef
        out = out_ptr + offs_n[:, None].to(tl.int64) * stride_on + offs_v[None, :]
        tl.store(out, grad.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


def _triton_blocks(H: int, dtype: torch.dtype) -> tuple[int, int, int, dict]:
    """(BLOCK_N, BLOCK_V, BLOCK_K, launch options)."""
    if triton_interpreting():
        # Small tiles keep the interpreter fast; tl.dot needs >= 16.
        return 32, 64, 32 if H <= 32 else 64, {}
    if dtype == torch.float32:  # ieee fp32 dots: smaller tiles, registers are the limit
        return 64, 64, 32, {"num_warps": 4, "num_stages": 2}
    # bf16/fp16 tensor-core tiles; a common good point on A100/H100 class GPUs (not tuned here).
    return 128, 128, 64, {"num_warps": 8, "num_stages": 3}


def _upcast(dtype: torch.dtype) -> bool:
    # The Triton 3.7 interpreter returns garbage for bf16 x bf16 tl.dot (fp16 is fine); upcasting
    # the tiles there gives the same fp32 products. Compiled kernels keep bf16 tensor-core dots.
    return dtype == torch.bfloat16 and triton_interpreting()


def _precision(dtype: torch.dtype) -> str:
    # tf32 would cost fp32 inputs ~3 decimal digits in the logits; keep fp32 exact.
    return "ieee" if dtype == torch.float32 else "tf32"


def _triton_forward(hidden_NH, weight_VH, labels_N, inv_t, want_entropy):
    N, H = hidden_NH.shape
    V = weight_VH.shape[0]
    dev = hidden_NH.device
    logp_N = torch.empty(N, dtype=torch.float32, device=dev)
    lse_N = torch.empty(N, dtype=torch.float32, device=dev)
    ent_N = torch.empty(N, dtype=torch.float32, device=dev) if want_entropy else lse_N
    if N == 0:
        return logp_N, (ent_N if want_entropy else None), lse_N
    BN, BV, BK, opts = _triton_blocks(H, hidden_NH.dtype)
    _flp_fwd_kernel[(triton.cdiv(N, BN),)](
        hidden_NH, weight_VH, labels_N, logp_N, lse_N, ent_N,
        N, V, H, hidden_NH.stride(0), weight_VH.stride(0), inv_t,
        IGNORE=IGNORE_INDEX, BLOCK_N=BN, BLOCK_V=BV, BLOCK_K=BK, WANT_ENT=want_entropy,
        PRECISION=_precision(hidden_NH.dtype), UPCAST=_upcast(hidden_NH.dtype), **opts,
    )
    return logp_N, (ent_N if want_entropy else None), lse_N


def _triton_backward(hidden_NH, weight_VH, labels_N, lse_N, ent_N, g_N, ge_N, inv_t, rows, vt, need_h, need_w):
    N, H = hidden_NH.shape
    V = weight_VH.shape[0]
    dev = hidden_NH.device
    grad_h = torch.zeros(hidden_NH.shape, dtype=torch.float32, device=dev) if need_h else None
    grad_w = torch.zeros(weight_VH.shape, dtype=torch.float32, device=dev) if need_w else None
    if N == 0:
        return grad_h, grad_w
    # dL/dlogits in the input dtype: bf16 GEMMs are what cuBLAS runs fastest, and the fp32
    # accumulators above keep the sum over vocab tiles exact to fp32.
    buf = torch.empty(rows * vt, dtype=hidden_NH.dtype, device=dev)
    g_N = g_N.float().contiguous()
    ge_c = ge_N.float().contiguous() if ge_N is not None else g_N
    ent_c = ent_N if ent_N is not None else lse_N
    BN, BV, BK, opts = _triton_blocks(H, hidden_NH.dtype)
    for n0, n1 in _tiles(N, rows):
        h = hidden_NH[n0:n1]
        nr = n1 - n0
        for v0, v1 in _tiles(V, vt):
            w = weight_VH[v0:v1]
            grad_z = buf[: nr * (v1 - v0)].view(nr, v1 - v0)
            _flp_grad_logits_kernel[(triton.cdiv(nr, BN), triton.cdiv(v1 - v0, BV))](
                h, w, labels_N[n0:n1], lse_N[n0:n1], ent_c[n0:n1], g_N[n0:n1], ge_c[n0:n1], grad_z,
                nr, v1 - v0, H, v0, h.stride(0), w.stride(0), grad_z.stride(0), inv_t,
                IGNORE=IGNORE_INDEX, BLOCK_N=BN, BLOCK_V=BV, BLOCK_K=BK, HAS_GE=ge_N is not None,
                PRECISION=_precision(hidden_NH.dtype), UPCAST=_upcast(hidden_NH.dtype), **opts,
            )
            if need_h:
                grad_h[n0:n1] += grad_z @ w
            if need_w:
                grad_w[v0:v1] += grad_z.T @ h
    return grad_h, grad_w


# ----------------------------------------------------------------------------- autograd


# Registered as torch.library custom ops: opaque to torch.compile (no tracing through the tile
# loops), checked by torch.library.opcheck, with fake (meta) implementations for shape inference.


@torch.library.custom_op("ifrl::fused_linear_logprobs_fwd", mutates_args=())
def _flp_fwd_op(
    hidden_NH: torch.Tensor, weight_VH: torch.Tensor, labels_N: torch.Tensor, temperature: float,
    return_entropy: bool, impl: str, chunk_bytes: int, vocab_tile: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (logp[N], entropy[N] or [0], lse[N]); lse is kept for the backward."""
    N, V = hidden_NH.shape[0], weight_VH.shape[0]
    inv_t = 1.0 / temperature
    if impl == "triton":
        logp_N, ent_N, lse_N = _triton_forward(
            hidden_NH.contiguous(), weight_VH.contiguous(), labels_N.contiguous(), inv_t, return_entropy
        )
    else:
        rows, vt = _torch_tile_shape(N, V, chunk_bytes, vocab_tile or None)
        logp_N, ent_N, lse_N = _torch_forward(hidden_NH, weight_VH, labels_N, inv_t, return_entropy, rows, vt)
    if ent_N is None:
        ent_N = logp_N.new_empty(0)
    return logp_N, ent_N, lse_N


@_flp_fwd_op.register_fake
def _(hidden_NH, weight_VH, labels_N, temperature, return_entropy, impl, chunk_bytes, vocab_tile):
    N = hidden_NH.shape[0]
    dt = _acc_dtype(hidden_NH)
    return hidden_NH.new_empty(N, dtype=dt), hidden_NH.new_empty(N if return_entropy else 0, dtype=dt), \
        hidden_NH.new_empty(N, dtype=dt)


@torch.library.custom_op("ifrl::fused_linear_logprobs_bwd", mutates_args=())
def _flp_bwd_op(
    hidden_NH: torch.Tensor, weight_VH: torch.Tensor, labels_N: torch.Tensor, lse_N: torch.Tensor,
    ent_N: torch.Tensor, g_N: torch.Tensor, ge_N: torch.Tensor, temperature: float, impl: str, chunk_bytes: int,
    vocab_tile: int, has_ge: bool, need_h: bool, need_w: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (dL/dhidden, dL/dweight) in the inputs' dtypes; an empty tensor for one not needed."""
    N, V = hidden_NH.shape[0], weight_VH.shape[0]
    rows, vt = (_tile_shape if impl == "triton" else _torch_tile_shape)(N, V, chunk_bytes, vocab_tile or None)
    fn = _triton_backward if impl == "triton" else _torch_backward
    if impl == "triton":
        hidden_NH, weight_VH, labels_N = hidden_NH.contiguous(), weight_VH.contiguous(), labels_N.contiguous()
    grad_h, grad_w = fn(hidden_NH, weight_VH, labels_N, lse_N, ent_N if has_ge else None, g_N,
                        ge_N if has_ge else None, 1.0 / temperature, rows, vt, need_h, need_w)
    grad_h = grad_h.to(hidden_NH.dtype) if need_h else hidden_NH.new_empty(0)
    grad_w = grad_w.to(weight_VH.dtype) if need_w else weight_VH.new_empty(0)
    return grad_h, grad_w


@_flp_bwd_op.register_fake
def _(hidden_NH, weight_VH, labels_N, lse_N, ent_N, g_N, ge_N, temperature, impl, chunk_bytes, vocab_tile, has_ge,
      need_h, need_w):
    return (torch.empty_like(hidden_NH) if need_h else hidden_NH.new_empty(0),
            torch.empty_like(weight_VH) if need_w else weight_VH.new_empty(0))


def _flp_setup_context(ctx, inputs, output):
    hidden_NH, weight_VH, labels_N, temperature, return_entropy, impl, chunk_bytes, vocab_tile = inputs
    _, ent_N, lse_N = output
    ctx.save_for_backward(hidden_NH, weight_VH, labels_N, lse_N, ent_N)
    ctx.cfg = (temperature, return_entropy, impl, chunk_bytes, vocab_tile)


def _flp_backward(ctx, g_N, ge_N, _g_lse):
    hidden_NH, weight_VH, labels_N, lse_N, ent_N = ctx.saved_tensors
    temperature, return_entropy, impl, chunk_bytes, vocab_tile = ctx.cfg
    if g_N is None:
        g_N = torch.zeros_like(lse_N)
    has_ge = bool(return_entropy) and ge_N is not None
    need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_h, grad_w = torch.ops.ifrl.fused_linear_logprobs_bwd(
        hidden_NH, weight_VH, labels_N, lse_N, ent_N, g_N, ge_N if has_ge else g_N, temperature, impl, chunk_bytes,
        vocab_tile, has_ge, need_h, need_w,
    )
    return grad_h if need_h else None, grad_w if need_w else None, None, None, None, None, None, None


_flp_fwd_op.register_autograd(_flp_backward, setup_context=_flp_setup_context)


def fused_linear_logprobs(
    hidden_NH: torch.Tensor,
    weight_VH: torch.Tensor,
    labels_N: torch.Tensor,
    temperature: float = 1.0,
    return_entropy: bool = False,
    impl: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    vocab_tile: int | None = None,
):
    """Per-token ``log_softmax(hidden @ weight.T / temperature)[label]`` without [N, V] logits.

    Args:
        hidden_NH: [N, H] final hidden states (fp32, bf16 or fp16; accumulation is fp32).
        weight_VH: [V, H] LM-head weight (``model.lm_head.weight``).
        labels_N: [N] token ids; ``-100`` rows give 0 and receive no gradient.
        temperature: logits are divided by it (the sampling temperature).
        return_entropy: also return the entropy of the full distribution per row.
        impl: ``None`` (Triton on CUDA, tiled PyTorch elsewhere), ``"reference"``,
            ``"torch"`` or ``"triton"``.
        chunk_bytes / vocab_tile: size of one fp32 logits tile (torch path and Triton backward; 64 MiB:
            larger row blocks measured faster on CPU than 32 MiB). The torch path's transient memory
            is about ``chunk_bytes`` (``2 * chunk_bytes`` with the entropy), the Triton backward's
            ``2 * chunk_bytes``; ``vocab_tile`` defaults to 2048 (torch, widened for small N) / 8192.

    Returns:
        float32 ``logprobs[N]`` (float64 for float64 inputs), or ``(logprobs[N], entropy[N])``.
        Differentiable w.r.t. ``hidden_NH`` and ``weight_VH`` (through both outputs).
    """
    _check_inputs(hidden_NH, weight_VH, labels_N, temperature)
    if weight_VH.device != hidden_NH.device or labels_N.device != hidden_NH.device:
        raise ValueError(
            f"fused_linear_logprobs: hidden on {hidden_NH.device}, weight on {weight_VH.device}, labels on "
            f"{labels_N.device}; move them to one device"
        )
    if chunk_bytes < 4:
        raise ValueError(f"fused_linear_logprobs: chunk_bytes={chunk_bytes} is too small; use >= 1 MiB")
    which = resolve_impl(impl, hidden_NH.device, "fused_linear_logprobs")
    if which == "reference":
        return fused_linear_logprobs_reference(hidden_NH, weight_VH, labels_N, temperature, return_entropy)
    if which == "triton" and hidden_NH.dtype == torch.float64:
        raise ValueError("fused_linear_logprobs: the Triton path takes fp32/bf16/fp16, not float64; use impl='torch'")
    logp_N, ent_N, _ = torch.ops.ifrl.fused_linear_logprobs_fwd(
        hidden_NH, weight_VH, labels_N, float(temperature), bool(return_entropy), which, int(chunk_bytes),
        int(vocab_tile or 0),
    )
    return (logp_N, ent_N) if return_entropy else logp_N
