"""Photorealistic smoothing (Li et al. 2018, Sec. 3.2): the closed-form manifold-ranking solve
with the matting affinity, a fast iterative solver for it, and the guided-filter approximation.

Closed form (paper Eq. 5):  R* = (1 - alpha) (I - alpha S)^-1 Y,  S = D^-1/2 W D^-1/2,
alpha = 1 / (1 + lambda), W the matting affinity of the content photo (Levin et al. 2008),
D = diag(row sums of W).

Why an iterative solver: the official code factorises the sparse system directly (SuperLU /
UMFPACK), which costs ~56 s and 2.4 GiB at 512^2 here and grows super-linearly. We solve the
equivalent symmetric system

    B q = (1 - alpha) D^1/2 Y,   B = D - alpha W,   R = D^1/2 q

with conjugate gradients preconditioned by aggregation algebraic multigrid (nodes/pis/multigrid.py).
B is a graph-Laplacian-like SPD matrix (B 1 = (1 - alpha) D 1, so constants are its near-null
space -- exactly the vector AMG's default candidate handles), so the iteration count barely
grows with the image size and the cost is ~linear in the number of pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import NDArray

from .multigrid import MultigridPreconditioner, StencilOperator, available_threads, heap_reuse, pcg, torch_threads

Progress = Callable[[int, int], None]
F64 = NDArray[np.float64]


# ---------------------------------------------------------------------------------------------
# Matting affinity
# ---------------------------------------------------------------------------------------------
def _window_stats(ch: list[F64], eps: float, r: int) -> tuple[list[F64], dict[tuple[int, int], F64]]:
    """Per window fully inside the image (h = H - 2r rows, w = W - 2r columns): the mean of each
    channel and the inverse of the regularised colour covariance Sigma + eps/|w| I, as
    contiguous planes keyed by (row, column), float64."""
    H, W = ch[0].shape
    k = 2 * r + 1
    n = k * k
    h, w = H - 2 * r, W - 2 * r
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    prod = {(a, b): ch[a] * ch[b] for a, b in pairs}
    s1 = [np.zeros((h, w)) for _ in range(3)]
    s2 = {pq: np.zeros((h, w)) for pq in pairs}
    for dy in range(k):
        for dx in range(k):
            for c in range(3):
                s1[c] += ch[c][dy:dy + h, dx:dx + w]
            for pq in pairs:
                s2[pq] += prod[pq][dy:dy + h, dx:dx + w]
    mu = [v / n for v in s1]
    # eps is spread over the window (eps/|w|), as in Levin et al.'s code and FastPhotoStyle.
    cov = {(a, b): s2[(a, b)] / n - mu[a] * mu[b] + (eps / n if a == b else 0.0) for a, b in pairs}
    # LAPACK's pivoted inverse: a cofactor formula loses the determinant to cancellation when
    # a window is flat (rank-1 covariance + eps: det ~ eps^2, terms ~ eps)
    m = np.empty((h, w, 3, 3))
    for p, q in pairs:
        m[:, :, p, q] = m[:, :, q, p] = cov[(p, q)]
    full = torch.linalg.inv(torch.from_numpy(m)).numpy()  # LU with pivoting, batched: ~2x numpy's here
    inv = {(p, q): np.ascontiguousarray(full[:, :, p, q]) for p in range(3) for q in range(3)}
    return mu, inv


def affinity_band(img: F64, eps: float = 1e-7, r: int = 1) -> tuple[F64, list[tuple[int, int]]]:
    """The matting affinity as planes: ``band[o, y, x] = W(p, p + off[o])`` for p = (y, x) and the
    (2k-1)^2 offsets ``off`` (k = 2r+1) in increasing column order; zero where p + off[o] falls
    outside the image or no window holds both pixels.

    W_ij = sum_{k : i,j in w_k} (1 + (I_i - mu_k)^T (Sigma_k + eps/|w| I)^-1 (I_j - mu_k)) / |w|
    (Levin et al. 2008, Eq. 12 without the delta term), over windows fully inside the image. The
    value for offset d at pixel i is a sum of shifted per-window terms, so there is no COO list
    of |w|^2 entries per window and no duplicate summation; every array is a contiguous plane.
    """
    img = np.asarray(img, dtype=np.float64)
    H, W, _ = img.shape
    k = 2 * r + 1
    n = k * k
    if H < k or W < k:
        raise ValueError(f"image {H}x{W} is smaller than the {k}x{k} affinity window")
    h, w = H - 2 * r, W - 2 * r
    ch = [np.ascontiguousarray(img[..., c]) for c in range(3)]
    mu, inv = _window_stats(ch, eps, r)
    pos = [(ay, ax) for ay in range(k) for ax in range(k)]
    # z[a][c]: channel c at window position a minus the window mean
    z = [[ch[c][ay:ay + h, ax:ax + w] - mu[c] for c in range(3)] for ay, ax in pos]
    span = 2 * k - 1  # offsets -(k-1)..(k-1) per axis
    off = [(dy, dx) for dy in range(-(k - 1), k) for dx in range(-(k - 1), k)]
    band = np.zeros((len(off), H, W))
    val = np.empty((h, w))
    tmp = np.empty((h, w))
    for ia, (ay, ax) in enumerate(pos):
        # y_a = Sigma^-1 z_a, one channel plane at a time
        ya = [inv[(c, 0)] * z[ia][0] + inv[(c, 1)] * z[ia][1] + inv[(c, 2)] * z[ia][2] for c in range(3)]
        for ib, (by, bx) in enumerate(pos):
            dy, dx = by - ay, bx - ax
            if (dy, dx) < (0, 0):
                continue  # filled by symmetry below
            np.multiply(ya[0], z[ib][0], out=val)
            val += np.multiply(ya[1], z[ib][1], out=tmp)
            val += np.multiply(ya[2], z[ib][2], out=tmp)
            val += 1.0
            # pixel i = window origin + a; its partner j = i + d
            band[(dy + k - 1) * span + dx + k - 1, ay:ay + h, ax:ax + w] += val
    band /= n
    # Lower half by symmetry: W(p, p + d) = W(p + d, p), read from the plane of -d at p + d.
    for o, (dy, dx) in enumerate(off):
        if (dy, dx) < (0, 0):
            src = band[(-dy + k - 1) * span + (-dx + k - 1)]
            py0, py1 = max(0, -dy), min(H, H - dy)
            px0, px1 = max(0, -dx), min(W, W - dx)
            band[o, py0:py1, px0:px1] = src[py0 + dy:py1 + dy, px0 + dx:px1 + dx]
    return band, off


def matting_affinity(img: F64, eps: float = 1e-7, r: int = 1) -> sp.csr_matrix:
    """Matting affinity W of an H x W x 3 image in [0, 1] as a CSR matrix (see :func:`affinity_band`)."""
    band, off = affinity_band(img, eps, r)
    return _band_to_csr(band, off)


def _band_to_csr(band: F64, off: list[tuple[int, int]]) -> sp.csr_matrix:
    """CSR matrix from per-offset value planes (offsets in increasing column order, so each
    row's columns come out sorted). Entries whose partner pixel lies inside the image are kept,
    zero or not, so the pattern is the full (2k-1)^2 stencil clipped at the borders."""
    n_off, H, W = band.shape
    N = H * W
    idx = np.int32 if N * n_off < 2**31 else np.int64
    ys, xs = np.arange(H), np.arange(W)
    keep = np.empty((H, W, n_off), dtype=bool)
    for o, (dy, dx) in enumerate(off):
        np.logical_and(((ys + dy >= 0) & (ys + dy < H))[:, None], ((xs + dx >= 0) & (xs + dx < W))[None, :],
                       out=keep[:, :, o])
    keep = keep.reshape(N, n_off)
    step = np.array([dy * W + dx for dy, dx in off], dtype=idx)
    cols = np.arange(N, dtype=idx)[:, None] + step[None, :]
    data = np.ascontiguousarray(band.reshape(n_off, N).T)
    indptr = np.zeros(N + 1, dtype=idx)
    np.cumsum(keep.sum(1, dtype=idx), out=indptr[1:])
    return sp.csr_matrix((data[keep], cols[keep], indptr), shape=(N, N))


# ---------------------------------------------------------------------------------------------
# Closed-form solve
# ---------------------------------------------------------------------------------------------
def smoothing_band(content: F64, lam: float, eps: float, r: int) -> tuple[F64, list[tuple[int, int]], F64, float]:
    """B = D - alpha W as stencil planes (``band[o][p] = B(p, p + off[o])``, see
    :func:`affinity_band`), d = diag(D) (length H*W), alpha = 1 / (1 + lam)."""
    band, off = affinity_band(content, eps, r)
    d = band.sum(axis=0).ravel()  # row sums of W (entries outside the image are zero)
    alpha = 1.0 / (1.0 + lam)
    band *= -alpha
    centre = off.index((0, 0))
    band[centre] += d.reshape(band.shape[1:])
    return band, off, d, alpha


def smoothing_system(content: F64, lam: float, eps: float, r: int) -> tuple[sp.csr_matrix, F64, float]:
    """B = D - alpha W (CSR), d = diag(D), alpha = 1 / (1 + lam)."""
    band, off, d, alpha = smoothing_band(content, lam, eps, r)
    return _band_to_csr(band, off), d, alpha


def closed_form_smooth(stylized: F64, content: F64, lam: float = 1e-4, eps: float = 1e-7, r: int = 1,
                       solver: str = "amg", rtol: float = 1e-3, maxiter: int = 300,
                       tol_levels: float = 0.25, progress: Progress | None = None,
                       threads: int = 0) -> tuple[F64, dict]:
    """R* = (1 - alpha)(I - alpha S)^-1 Y for H x W x 3 float arrays in [0, 1] (no clipping).

    ``solver``: ``"amg"`` (CG preconditioned by algebraic multigrid, stopped when every
    channel's relative residual is below ``rtol`` and the estimated max error is below
    ``tol_levels`` grey levels, see :func:`pcg`) or ``"direct"`` (scipy ``spsolve`` of the
    same system, the official route and our reference). ``threads``: torch/BLAS threads for
    the solve; 0 = the CPUs free right now (:func:`available_threads`: this process's CPUs
    minus the other running tasks), shed to one during the solve if iterations slow down 2x (a
    neighbour started). Returns the result and stats (``threads``, ``threads_end``).
    """
    from threadpoolctl import threadpool_limits

    H, W, _ = content.shape
    n_threads = threads or available_threads()
    # Two threads made CG 1.7x faster on this idle 2-core machine; beside a busy process, two
    # threads wait on each other at every parallel region (3-9x slower), hence the count of
    # free CPUs and the shedding inside pcg.
    with threadpool_limits(n_threads), torch_threads(n_threads), heap_reuse():
        t0 = time.perf_counter()
        band, off, d, alpha = smoothing_band(np.asarray(content, np.float64), lam, eps, r)
        B = _band_to_csr(band, off)
        sq = np.sqrt(d)
        rhs = (1.0 - alpha) * sq[:, None] * np.asarray(stylized, np.float64).reshape(-1, 3)
        stats: dict = {"build_s": time.perf_counter() - t0, "nnz": int(B.nnz), "solver": solver,
                       "threads": n_threads}
        t1 = time.perf_counter()
        if solver == "direct":
            import scipy.sparse.linalg as spla

            q = np.asarray(spla.spsolve(B.tocsc(), rhs)).reshape(-1, 3)
            stats["iterations"] = 0
        elif solver == "amg":
            # Channels-first planes on the pixel grid: the finest level and CG run on B's
            # stencil (StencilOperator), the coarse levels on pyamg's CSR matrices.
            pre = MultigridPreconditioner(B, np.column_stack([np.ones(B.shape[0]), content.reshape(-1, 3)]),
                                          StencilOperator(band, off, torch.float32))
            stats["setup_s"] = time.perf_counter() - t1
            stats["levels"] = pre.sizes
            planes = lambda a: torch.from_numpy(np.ascontiguousarray(a.T)).reshape(-1, H, W)  # noqa: E731
            qp, its, rel = pcg(StencilOperator(band, off, torch.float64), planes(rhs), pre, rtol, maxiter,
                               progress, planes(sq[:, None]), tol_levels, adapt_threads=not threads)
            q = qp.reshape(3, -1).T.numpy()
            stats["iterations"], stats["relative_residual"] = its, rel
            stats["threads_end"] = torch.get_num_threads()
        else:
            raise ValueError(f"unknown solver {solver!r} (use 'amg' or 'direct')")
        stats["solve_s"] = time.perf_counter() - t1
    return (sq[:, None] * q).reshape(H, W, 3), stats


def official_geometry_smooth(stylized: F64, content: F64, **solve_kw) -> tuple[F64, dict]:
    """FastPhotoStyle's exact data path around the same solve (for peer-equivalent output):
    the stylised image is taken as the uint8 PNG the official pipeline writes (truncated),
    centre-cropped by 2 px per side; the content (uint8) is resized with PIL bilinear to that
    cropped size; both are edge-padded by 2 px back to H x W; after the solve the 2-px border is
    cropped again and the result truncated to uint8. Output: (H - 4) x (W - 4) x 3 in [0, 1].
    """
    from PIL import Image

    H, W, _ = stylized.shape
    h, w = H - 4, W - 4
    if h < 3 or w < 3:
        raise ValueError(f"official geometry needs at least 7x7 pixels, got {H}x{W}")
    y8 = np.floor(np.clip(stylized, 0, 1) * 255 + 1e-3)[2:2 + h, 2:2 + w] / 255.0
    c8 = np.round(np.clip(content, 0, 1) * 255).astype(np.uint8)
    c_small = np.asarray(Image.fromarray(c8).resize((w, h), Image.BILINEAR), dtype=np.float64) / 255.0
    pad = ((2, 2), (2, 2), (0, 0))
    R, stats = closed_form_smooth(np.pad(y8, pad, mode="edge"), np.pad(c_small, pad, mode="edge"), **solve_kw)
    V = R[2:2 + h, 2:2 + w]
    return np.floor(np.clip(V * 255.0, 0, 255)) / 255.0, stats


# ---------------------------------------------------------------------------------------------
# Guided filter (fast approximation, FastPhotoStyle --fast)
# ---------------------------------------------------------------------------------------------
def _box_sum(x: F64, r: int) -> F64:
    """Sum over (2r+1)^2 windows with mirrored borders (OpenCV BORDER_REFLECT: edge repeated)."""
    pad = [(r, r), (r, r)] + [(0, 0)] * (x.ndim - 2)
    p = np.pad(x, pad, mode="symmetric")
    c = np.cumsum(np.cumsum(p, 0), 1)
    c = np.pad(c, [(1, 0), (1, 0)] + [(0, 0)] * (x.ndim - 2))
    k = 2 * r + 1
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def guided_filter(guide: F64, src: F64, r: int = 35, eps: float = 1e-3) -> F64:
    """He et al.'s colour guided filter (TPAMI 2013, Alg. 2), float64, on H x W x 3 arrays.

    ``eps`` is in the units of the arrays passed (the official call passes uint8 images, so its
    eps=1e-3 is in 0..255 units; the node converts).
    """
    H, W, _ = guide.shape
    n = _box_sum(np.ones((H, W)), r)
    mean = lambda x: _box_sum(x, r) / (n if x.ndim == 2 else n[..., None])  # noqa: E731
    mu_i = mean(guide)
    cov_ii = mean(np.einsum("hwi,hwj->hwij", guide, guide).reshape(H, W, 9)).reshape(H, W, 3, 3)
    cov_ii = cov_ii - mu_i[..., :, None] * mu_i[..., None, :] + eps * np.eye(3)
    out = np.empty(src.shape, dtype=np.float64)
    inv = np.linalg.inv(cov_ii)
    a_all, b_all = [], []
    for c in range(src.shape[2]):
        p = src[..., c]
        mu_p = mean(p)
        cov_ip = mean(guide * p[..., None]) - mu_i * mu_p[..., None]
        a = np.einsum("hwij,hwj->hwi", inv, cov_ip)
        b = mu_p - np.einsum("hwi,hwi->hw", a, mu_i)
        a_all.append(mean(a))
        b_all.append(mean(b))
    for c in range(src.shape[2]):
        out[..., c] = np.einsum("hwi,hwi->hw", a_all[c], guide) + b_all[c]
    return out
