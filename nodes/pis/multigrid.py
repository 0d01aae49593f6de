"""The iterative solver behind ``pis.AffinitySmooth``: conjugate gradients on the three colour
channels at once, preconditioned by a symmetric algebraic-multigrid V-cycle (pyamg's aggregation
hierarchy with colour near-null-space candidates, our Chebyshev smoothing in float32 torch). The
finest level and CG apply B matrix-free from its pixel stencil (:class:`StencilOperator`, vectors
as 3 x H x W planes); the coarse levels are CSR. Also the thread and allocator settings the solve
runs under. See nodes/pis/smoothing.py for the system itself.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import NDArray

from nodegraph.threads import free_cpus, torch_threads  # noqa: F401  (torch_threads: re-exported)

Progress = Callable[[int, int], None]
F64 = NDArray[np.float64]


class heap_reuse:
    """glibc only: serve the solve's large arrays (tens of MB at 512^2, freed and reallocated
    many times) from the heap instead of fresh mmaps, so their pages are faulted in once, not
    per allocation -- 0.3-0.5 s of a 512^2 solve in a fresh process. On exit the thresholds are
    left at glibc's own dynamic ceiling (32 MiB mmap, 64 MiB trim) and free heap memory is
    returned to the system. Elsewhere (musl, macOS, Windows) it does nothing."""

    _libc = None

    def __enter__(self) -> None:
        try:
            import ctypes

            if heap_reuse._libc is None:
                heap_reuse._libc = ctypes.CDLL("libc.so.6")
            self.libc = heap_reuse._libc
            self.libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
            self.libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        except (OSError, AttributeError):
            self.libc = None

    def __exit__(self, *exc: object) -> None:
        if self.libc is not None:
            self.libc.mallopt(-3, 32 << 20)
            self.libc.mallopt(-1, 64 << 20)
            self.libc.malloc_trim(0)


def available_threads(samples: int = 5) -> int:
    """Threads worth starting now (the engine's :func:`nodegraph.threads.free_cpus`). Why: the
    solve is hundreds of short parallel regions per CG iteration; each ends at a barrier that waits
    for the slowest thread, and a thread descheduled for a busy neighbour holds every region up for
    a scheduler slice. Beside one busy process on 2 cores, 2 threads made a 512^2 solve 3-9x slower
    than 1 thread (issue 19); on an idle machine 2 threads are ~1.7x faster."""
    return free_cpus(samples)


def _csr(A: sp.spmatrix, dtype: torch.dtype) -> torch.Tensor:
    A = A.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the matmul we use is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int32)),
                                       torch.from_numpy(A.indices.astype(np.int32)),
                                       torch.from_numpy(A.data).to(dtype), size=A.shape,
                                       check_invariants=False)


class StencilOperator:
    """y = B x for a symmetric matrix B on an H x W pixel grid given by its stencil planes:
    ``B(p, p + o) = band[o][p]``, zero where p + o falls outside the grid. Vectors are
    channels-first planes, C x H x W (C = 3 colour channels here).

    Why not CSR: at 512^2 the 5x5 stencil is 6.5 M entries and the solve is limited by memory
    traffic (issue 19 §3). Only the centre and the upper half of the offsets are stored (B is
    symmetric: the lower half is the same plane shifted) and there are no column indices: one
    in-place multiply-add per stored plane and direction over whole planes, ~1.4x faster than
    torch's CSR product in float32 here (row tiles did not help: the planes fit in L3).
    Channels-first vectors also make the solver's per-channel scalings plain broadcasts
    (3 x H x W times 3 x 1 x 1), which torch vectorises; the N x 3 layout's broadcasts over a
    3-wide last axis were 3-5x slower per element.
    """

    def __init__(self, band: F64, off: list[tuple[int, int]], dtype: torch.dtype) -> None:
        centre = off.index((0, 0))
        half = [(o, dy, dx) for o, (dy, dx) in enumerate(off) if (dy, dx) > (0, 0)]
        H, W = band.shape[1:]
        self.centre = torch.from_numpy(band[centre]).to(dtype)
        # per stored offset o = (dy, dx) >= 0: the plane cut to the pixels p whose partner p + o
        # is inside, and the index of p and of p + o in a C x H x W vector
        self.terms: list[tuple[torch.Tensor, tuple, tuple]] = []
        for o, dy, dx in half:
            if dy >= H or abs(dx) >= W:
                continue
            rows, cols = slice(0, H - dy), slice(max(0, -dx), min(W, W - dx))
            shifted = (slice(None), slice(dy, H), slice(cols.start + dx, cols.stop + dx))
            self.terms.append((torch.from_numpy(np.ascontiguousarray(band[o][rows, cols])).to(dtype),
                               (slice(None), rows, cols), shifted))

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.mul(self.centre, x)
        for b, at_p, at_q in self.terms:
            y[at_p].addcmul_(b, x[at_q])  # B(p, p+o) x(p+o)
            y[at_q].addcmul_(b, x[at_p])  # B(p+o, p) x(p)
        return y


def _lambda_max(A, dinv: torch.Tensor, steps: int = 15) -> float:
    """Largest eigenvalue of D^-1 A: Lanczos on the symmetric D^-1/2 A D^-1/2 from a fixed
    start, returned with a 5% margin. ``dinv`` has the shape of one vector column (n x 1 for a
    CSR level, 1 x H x W for a :class:`StencilOperator`).

    It must not be underestimated: Chebyshev smoothing amplifies modes above its interval,
    which makes the preconditioner indefinite (pyamg's randomised 8-step estimate was 12% low
    on a 256^2 photo and CG broke down). The Ritz value approaches lambda_max from below
    quickly; 15 steps were within 1% of ARPACK on our photos.
    """
    n = dinv.numel()
    s = dinv.sqrt()
    v = (torch.cos(torch.arange(n, dtype=torch.float32) * 0.7) + 1.5).reshape(dinv.shape)
    v = v / v.norm()
    v_old = torch.zeros_like(v)
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    for _ in range(min(steps, n)):
        w = s * (A @ (s * v))
        a = float((w * v).sum())
        w = w - a * v - beta * v_old
        alphas.append(a)
        beta = float(w.norm())
        if beta < 1e-10:
            break
        betas.append(beta)
        v_old, v = v, w / beta
    k = len(alphas)
    T = np.diag(alphas) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    return 1.05 * float(np.linalg.eigvalsh(T)[-1])


def _pinv(A: F64) -> torch.Tensor:
    """Pseudo-inverse of the (small, symmetric PSD) coarsest matrix; rank-deficient for flat images."""
    vals, vecs = np.linalg.eigh(A)
    keep = vals > 1e-10 * max(float(vals.max()), 1e-300)
    return torch.from_numpy((vecs[:, keep] / vals[keep]) @ vecs[:, keep].T)


def _dinv(diag: F64) -> torch.Tensor:
    # Flat content makes the colour candidates linearly dependent inside an aggregate; the
    # tentative prolongator then has zero columns, i.e. coarse unknowns with empty rows. They
    # carry nothing, so the smoother leaves them at zero.
    return torch.from_numpy(np.divide(1.0, diag, out=np.zeros_like(diag), where=diag > 0)).float()


class MultigridPreconditioner:
    """A symmetric V-cycle on all three colour channels at once.

    Hierarchy: pyamg aggregation of B with near-null-space candidates [1, I_r, I_g, I_b] -- the
    matting Laplacian annihilates functions affine in the guide's colour inside each window,
    so these, not just constants, are what the coarse levels must represent (with constants
    alone CG needed ~4x more iterations). Tentative (unsmoothed) prolongation: cheaper to set
    up and sparser coarse operators, which won over smoothed prolongation in wall time.
    Smoother: Chebyshev polynomial in D^-1 B (same polynomial pre and post, so the
    preconditioner stays symmetric for CG), of degree ``degree`` on the finest level and
    ``coarse_degree`` below it. Float32 inside: it only has to approximate. Why 2 and 5 (was 3
    everywhere): the finest level's stencil passes are most of the cost and the coarse levels
    are 6x and more smaller, so smoothing is moved down the hierarchy; at 512^2 (one thread,
    this machine, CPU time) astronaut 40 -> 34 iterations and 3.2-3.6 -> 2.8-2.9 s, chelsea
    23 -> 22 and 2.0 -> 1.8 s, max error vs the converged solution 0.23 -> 0.13 and 0.13 -> 0.09
    grey levels. Degree 1 on the finest level was cheaper still but its stopping estimate
    under-read the error (0.35-0.83 grey levels left at tol_levels 0.25), so it is not used.

    ``max_coarse`` 100 (pyamg's default 500 left a 576-unknown coarsest level whose dense
    pseudo-inverse, an eigendecomposition, cost 0.07 s of CPU per set-up; one more level is cheaper).

    ``fine``: B as a float32 :class:`StencilOperator` on the pixel grid: the finest level works
    on 3 x H x W planes through it (the vectors :func:`pcg` passes), the coarse levels on pyamg's
    CSR matrices with N x 3 vectors.
    """

    def __init__(self, B: sp.csr_matrix, candidates: F64, fine: StencilOperator, degree: int = 2,
                 coarse_degree: int = 5, max_coarse: int = 100) -> None:
        import pyamg

        # strength=None aggregates on B's own pattern: the same aggregates as pyamg's default
        # symmetric strength with theta = 0, without the 0.4 s (512^2) it spends computing it.
        ml = pyamg.smoothed_aggregation_solver(B, B=candidates, symmetry="symmetric", smooth=None,
                                               strength=None, improve_candidates=None,
                                               max_coarse=max_coarse, presmoother=None,
                                               postsmoother=None, keep=False)
        self.levels: list[dict] = []
        for i, lvl in enumerate(ml.levels):
            if i == len(ml.levels) - 1:
                self.levels.append({"inv": _pinv(lvl.A.toarray())})
                break
            if i == 0:
                At, dinv = fine, _dinv(fine.centre.double().numpy())[None]
            else:
                A = lvl.A.tocsr()
                At, dinv = _csr(A, torch.float32), _dinv(A.diagonal())[:, None]
            self.levels.append({"A": At, "P": _csr(lvl.P, torch.float32), "R": _csr(lvl.P.T, torch.float32),
                                "dinv": dinv, "rho": _lambda_max(At, dinv),
                                "degree": degree if i == 0 else coarse_degree})
        self.sizes = [int(lvl.A.shape[0]) for lvl in ml.levels]

    def _smooth(self, lv: dict, b: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        # Chebyshev iteration on [rho/30, 1.1 rho] (pyamg's interval for smoothing).
        lmax = 1.1 * lv["rho"]
        lmin = lmax / 30.0
        theta, delta = (lmax + lmin) / 2, (lmax - lmin) / 2
        sigma = theta / delta
        rho = 1.0 / sigma
        A, dinv = lv["A"], lv["dinv"]
        degree = lv["degree"]
        if x is None:
            r = dinv * b
            x = torch.zeros_like(b)
        else:
            r = (b - A @ x).mul_(dinv)
        d = r / theta
        for k in range(degree):
            x.add_(d)
            if k == degree - 1:
                break
            r.addcmul_(dinv, A @ d, value=-1.0)  # in place: the vector ops cost ~1/3 of a matvec
            rho_new = 1.0 / (2 * sigma - rho)
            d.mul_(rho_new * rho).add_(r, alpha=2 * rho_new / delta)
            rho = rho_new
        return x

    def _cycle(self, i: int, b: torch.Tensor) -> torch.Tensor:
        lv = self.levels[i]
        if "inv" in lv:
            return (lv["inv"] @ b.double()).float()
        x = self._smooth(lv, b, None)
        res = b - lv["A"] @ x
        if i == 0:  # 3 x H x W planes <-> the coarse levels' N x 3 rows
            e = lv["P"] @ self._cycle(1, lv["R"] @ res.reshape(res.shape[0], -1).T)
            x.add_(e.T.reshape(x.shape))
        else:
            x.add_(lv["P"] @ self._cycle(i + 1, lv["R"] @ res))
        return self._smooth(lv, b, x)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return self._cycle(0, r.float()).to(r.dtype)


def pcg(A: StencilOperator, b: torch.Tensor, pre: MultigridPreconditioner, rtol: float, maxiter: int,
        progress: Progress | None = None, scale: torch.Tensor | None = None,
        tol_levels: float = 0.0, adapt_threads: bool = False) -> tuple[torch.Tensor, int, list[float]]:
    """Conjugate gradients on a block of C right-hand sides ``b`` (C x H x W, float64; three CG
    recurrences sharing each matrix pass), until every channel's ||r|| / ||b|| < rtol and -- when
    ``tol_levels`` > 0 -- the estimated remaining max-norm error of ``scale * x`` is below
    ``tol_levels`` / 255. ``scale`` (1 x H x W) broadcasts against ``b``. Returns x (C x H x W),
    the iteration count and the final relative residual per channel.

    Why the second test: a global residual can be small while a weakly connected patch (an
    "island" of the affinity graph) still carries a slowly converging error; on astronaut at
    512^2, rtol 1e-3 left 1.3 grey levels at one spot. The estimate is the last update's max
    norm times rho / (1 - rho), rho being the recent per-iteration contraction of that norm
    (a geometric tail); it tracked the true max error within ~1.5x on our photos. The update
    norms are recorded from the first iteration whose residuals are all below 10 rtol (the test
    needs four in a row and is only asked once the residuals pass), which spares a pass over
    the vectors in the other iterations.
    """
    C = b.shape[0]
    col = (C,) + (1,) * (b.dim() - 1)

    def dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # per channel, no N-sized temporary
        return torch.bmm(u.reshape(C, 1, -1), v.reshape(C, -1, 1)).view(col)

    def norm(u: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(u.reshape(C, -1), dim=1)

    sc = torch.ones_like(b[:1]) if scale is None else scale
    bn = norm(b).clamp_min(1e-300)
    x = torch.zeros_like(b)
    r = b.clone()
    z = pre(r)
    p = z.clone()
    rz = dot(r, z)
    rel = norm(r) / bn
    steps: list[float] = []
    it = 0
    times: list[float] = []
    while it < maxiter and not _converged(rel, steps, rtol, tol_levels):
        t_it = time.perf_counter()
        Ap = A @ p
        # Columns already converged keep stepping harmlessly (their update is ~0).
        step = rz / dot(p, Ap).clamp_min(1e-300)
        x.addcmul_(step, p)
        r.addcmul_(step, Ap, value=-1.0)
        rel = norm(r) / bn
        if tol_levels > 0 and (steps or bool((rel < 10 * rtol).all())):
            # max |scale * step * p| = max over channels of |step_c| max |scale * p_c|
            pmax = torch.linalg.vector_norm((sc * p).reshape(C, -1), float("inf"), dim=1)
            steps.append(float((pmax * step.view(-1).abs()).max()) * 255.0)
        it += 1
        if progress is not None:
            progress(it, maxiter)
        z = pre(r)
        rz_new = dot(r, z)
        p = p.mul_(rz_new / rz.clamp_min(1e-300)).add_(z)
        rz = rz_new
        times.append(time.perf_counter() - t_it)
        if adapt_threads:
            _shed_threads(times)
    return x, it, [float(v) for v in rel]


def _shed_threads(times: list[float]) -> None:
    """Drop to one thread when iterations slow down by 2x against the fastest so far: a neighbour
    started and our threads now wait on each other at every parallel region (see
    :func:`available_threads`). One thread never waits on another."""
    if len(times) >= 3 and torch.get_num_threads() > 1 and times[-1] > 2.0 * min(times[:-1]) \
            and times[-2] > 2.0 * min(times[:-2]):
        torch.set_num_threads(1)


def _converged(rel: torch.Tensor, steps: list[float], rtol: float, tol_levels: float) -> bool:
    if bool((rel >= rtol).any()):
        return False
    if tol_levels <= 0:
        return True
    if len(steps) < 4:
        return False
    rho = (steps[-1] / max(steps[-4], 1e-300)) ** (1 / 3)
    rho = min(max(rho, 0.5), 0.95)
    return steps[-1] * rho / (1 - rho) < tol_levels
