"""Clustering of marker patches into kernels, and the consensus step (FIELD_NOTES §1.5).

- :func:`kmeans`: the engine's original batched Lloyd k-means with a
  deterministic farthest-point start (one run, no seed).
- :func:`kmeans_pp`: seeded k-means++ with several restarts, batched, the
  run of lowest inertia kept per point set.
- :func:`consensus`: libift's reduction of more kernels than output
  channels, by cosine k-means prototypes or by PCA of the z-scored kernels.

Every function works on ``B`` independent point sets at once, and the result
of one set never depends on the others: distances are computed
element-wise (no matrix-product shortcut whose blocking depends on the batch
size), and k-means++ draws one set of random numbers from its seed that
every point set uses, so a model clustered alone or in a batch of 100 gets
bit-identical kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["KMEANS_ITERATIONS", "consensus", "drop_small_clusters", "kmeans", "kmeans_pp"]

KMEANS_ITERATIONS = 50
SIMILARITY_GRID = 1e5


def _sqdist(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(B, N, D), (B, k, D) -> (B, N, k)``, element-wise."""
    return ((points[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1)


def _lloyd(points: torch.Tensor, centroids: torch.Tensor, n_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd iterations from given centroids; returns centroids ``(B, k, D)`` and assignment ``(B, N)``."""
    k = centroids.shape[1]
    assign = _sqdist(points, centroids).argmin(dim=2)
    for _ in range(n_iter):
        onehot = F.one_hot(assign, k).to(points.dtype)  # (B, N, k)
        counts = onehot.sum(dim=1)  # (B, k)
        sums = torch.einsum("bnk,bnd->bkd", onehot, points)
        centroids = torch.where(counts[..., None] > 0, sums / counts.clamp(min=1)[..., None], centroids)
        new = _sqdist(points, centroids).argmin(dim=2)
        if torch.equal(new, assign):
            break
        assign = new
    return centroids, assign


def _repeat_small(points: torch.Tensor, k: int) -> torch.Tensor:
    """Repeat the points of sets smaller than ``k`` (libift takes all patches then)."""
    n = points.shape[1]
    if n < k:
        return points[:, torch.arange(k, device=points.device) % n]
    return points


def kmeans(points: torch.Tensor, k: int, n_iter: int = KMEANS_ITERATIONS) -> torch.Tensor:
    """Batched Lloyd k-means with deterministic farthest-point initialisation.

    Parameters
    ----------
    points : Tensor of shape (B, N, D)
        ``B`` independent point sets.
    k : int
        Number of clusters.  When ``N < k`` the points are repeated.
    n_iter : int, optional
        Maximum Lloyd iterations (stops earlier once no assignment changes).

    Returns
    -------
    centroids : Tensor of shape (B, k, D)
        Centroids; a cluster that empties keeps its previous centroid.
    """
    return kmeans_farthest(points, k, n_iter)[0]


def kmeans_farthest(
    points: torch.Tensor, k: int, n_iter: int = KMEANS_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`kmeans`, also returning the members of each cluster ``(B, k)``."""
    points = _repeat_small(points, k)
    b = points.shape[0]
    batch = torch.arange(b, device=points.device)
    first = _sqdist(points, points.mean(dim=1, keepdim=True))[..., 0].argmin(dim=1)
    chosen = [points[batch, first]]
    nearest = _sqdist(points, chosen[0][:, None])[..., 0]
    for _ in range(1, k):
        nxt = points[batch, nearest.argmax(dim=1)]
        chosen.append(nxt)
        nearest = torch.minimum(nearest, _sqdist(points, nxt[:, None])[..., 0])
    centroids, assign = _lloyd(points, torch.stack(chosen, dim=1), n_iter)
    return centroids, F.one_hot(assign, k).sum(dim=1)


def kmeans_pp(
    points: torch.Tensor, k: int, restarts: int = 10, seed: int = 42, n_iter: int = KMEANS_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means++ with restarts; the run of lowest inertia per point set.

    Parameters
    ----------
    points : Tensor of shape (B, N, D)
    k : int
        Clusters.  When ``N < k`` the points are repeated.
    restarts : int
        Independent k-means++ starts, each refined by Lloyd iterations.
    seed : int
        Seeds the uniform numbers that drive every start; they are drawn
        once, shape ``(restarts, k)``, and shared by all ``B`` sets.
    n_iter : int

    Returns
    -------
    centroids : Tensor of shape (B, k, D)
    members : Tensor of shape (B, k), int64
        Points assigned to each cluster in the final assignment.
    """
    points = _repeat_small(points, k)
    b, n, d = points.shape
    u = torch.rand(restarts, k, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    u = u.to(points.device)
    reps = points[:, None].expand(b, restarts, n, d).reshape(b * restarts, n, d)
    draws = u.repeat(b, 1)  # (B * R, k): run r of every set uses u[r]
    rows = torch.arange(b * restarts, device=points.device)
    idx = (draws[:, 0] * n).long().clamp(max=n - 1)
    chosen = [reps[rows, idx]]
    nearest = _sqdist(reps, chosen[0][:, None])[..., 0]
    for j in range(1, k):
        cdf = nearest.double().cumsum(dim=1)
        total = cdf[:, -1]
        target = draws[:, j] * total
        pick = torch.searchsorted(cdf, target[:, None], right=True)[:, 0].clamp(max=n - 1)
        uniform = (draws[:, j] * n).long().clamp(max=n - 1)  # every point already a centre
        pick = torch.where(total > 0, pick, uniform)
        nxt = reps[rows, pick]
        chosen.append(nxt)
        nearest = torch.minimum(nearest, _sqdist(reps, nxt[:, None])[..., 0])
    centroids, assign = _lloyd(reps, torch.stack(chosen, dim=1), n_iter)
    inertia = _sqdist(reps, centroids).min(dim=2).values.double().sum(dim=1).view(b, restarts)
    best = inertia.argmin(dim=1)  # first of equal inertias
    pick = torch.arange(b, device=points.device) * restarts + best
    return centroids[pick], F.one_hot(assign[pick], k).sum(dim=1)


def drop_small_clusters(
    centroids: torch.Tensor, members: torch.Tensor, n_points: int, fraction: float
) -> torch.Tensor:
    """libift's rule: clusters with fewer than ``max(fraction * n_points, 1)`` members become zero kernels.

    Parameters
    ----------
    centroids : Tensor of shape (B, k, D)
    members : Tensor of shape (B, k)
    n_points : int
        Patches of the marker.
    fraction : float
        0 keeps every cluster with at least one member.

    Returns
    -------
    centroids : Tensor of shape (B, k, D)
        Dropped clusters zeroed (a zero kernel gives a channel that is always 0).
    """
    least = max(fraction * n_points, 1.0)
    return torch.where((members >= least)[..., None], centroids, torch.zeros_like(centroids))


def consensus(kernels: torch.Tensor, labels: torch.Tensor, n_out: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce ``M`` unit-norm kernels per model to ``n_out`` (libift's consensus step).

    Parameters
    ----------
    kernels : Tensor of shape (B, M, D)
        Unit-norm (or zero) kernels.
    labels : Tensor of shape (B, M), int64
        Marker class of each kernel.
    n_out : int
        Kernels to keep, ``n_out < M``.
    method : {"kmeans", "pca"}
        ``kmeans``: spherical (cosine) k-means from a deterministic
        farthest-point start; each cluster is represented by its *prototype*,
        the member kernel most similar to the centroid, which keeps its
        marker label.  ``pca``: the top ``n_out`` principal directions of the
        kernel set z-scored per dimension (sign fixed so that the largest
        entry is positive), unit norm, label -1 (no single marker).

    Returns
    -------
    kernels : Tensor of shape (B, n_out, D)
    labels : Tensor of shape (B, n_out), int64
    """
    b, m, d = kernels.shape
    batch = torch.arange(b, device=kernels.device)
    if method == "pca":
        z = (kernels - kernels.mean(dim=1, keepdim=True)) / kernels.std(dim=1, keepdim=True).clamp(min=1e-6)
        vh = torch.stack([torch.linalg.svd(z[i], full_matrices=False)[2] for i in range(b)])  # (B, r, D)
        comps = torch.zeros(b, n_out, d, dtype=kernels.dtype, device=kernels.device)
        r = min(n_out, vh.shape[1])
        comps[:, :r] = vh[:, :r]
        big = comps.abs().argmax(dim=2, keepdim=True)
        comps = comps * torch.where(comps.gather(2, big) < 0, -1.0, 1.0)
        comps = comps / comps.norm(dim=2, keepdim=True).clamp(min=1e-6)
        return comps, torch.full((b, n_out), -1, dtype=torch.int64, device=kernels.device)

    def cos(c: torch.Tensor) -> torch.Tensor:  # (B, M, n)
        # rounded to 1e-5 so that float noise (another device, another summation order) does not
        # flip choices between kernels that are equally similar; ties go to the first kernel
        return torch.round((kernels[:, :, None, :] * c[:, None, :, :]).sum(-1) * SIMILARITY_GRID) / SIMILARITY_GRID

    first = cos(F.normalize(kernels.sum(dim=1, keepdim=True), dim=2))[..., 0].argmax(dim=1)
    chosen = [kernels[batch, first]]
    best = cos(chosen[0][:, None])[..., 0]
    for _ in range(1, n_out):
        nxt = kernels[batch, best.argmin(dim=1)]
        chosen.append(nxt)
        best = torch.maximum(best, cos(nxt[:, None])[..., 0])
    centroids = torch.stack(chosen, dim=1)
    assign = cos(centroids).argmax(dim=2)
    for _ in range(KMEANS_ITERATIONS):
        onehot = F.one_hot(assign, n_out).to(kernels.dtype)
        sums = torch.einsum("bmk,bmd->bkd", onehot, kernels)
        norm = sums.norm(dim=2, keepdim=True)
        centroids = torch.where(norm > 1e-6, sums / norm.clamp(min=1e-6), centroids)
        new = cos(centroids).argmax(dim=2)
        if torch.equal(new, assign):
            break
        assign = new
    sim = cos(centroids).masked_fill(F.one_hot(assign, n_out) == 0, -2.0)  # members only
    proto = sim.argmax(dim=1)  # (B, n_out); an empty cluster falls back to kernel 0
    return kernels[batch[:, None], proto], labels[batch[:, None], proto]
