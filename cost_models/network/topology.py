"""Mapping of a parallel group onto a system's network tiers, and per-tier transfer costs.

A group of ``n`` ranks with ``stride`` ``s`` in the device order occupies devices
``0, s, 2s, ...`` (it spans ``n * s`` devices). Tier ``k`` groups ``G_k`` consecutive
devices (an NVLink node, a fat tree, a torus pod), innermost first. The group then has
``r_k = clip(G_k // s, 1, n)`` ranks in one tier-``k`` domain, and the *level* ``k`` joins
``f_k = r_k / r_{k-1}`` tier-``(k-1)`` domains (``r_{-1} = 1``). A level with ``f_k = 1`` is
not crossed. Example: DGX H100, ``n = 16, s = 1``: ``f_0 = 8`` (NVLink), ``f_1 = 2`` (IB);
``n = 16, s = 8``: ``f_0 = 1``, ``f_1 = 16`` (each rank on its own NIC, one rail per GPU).

Everything here is vectorised: ``n`` and ``s`` are numpy arrays broadcast together.
Costs are split into hop latency on scale-up tiers (tier 0: NVLink, HCCS, ICI, Infinity
Fabric; and outer tiers a file marks ``scale_up``, as CloudMatrix384's Unified Bus around the
on-package die pair), hop latency on scale-out tiers (NICs, DCN, an oversubscribed
aggregation layer) and transfer time, so that the caller
can apply NCCL's protocol factors to each (see :mod:`cost_models.network.collectives`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_profiles.types import System, Tier

FloatArray = npt.NDArray[np.float64]

# A line of e devices (a torus dimension without its wraparound link) has half the
# bisection bandwidth of a ring of e devices, so a ring collective embedded in it runs at
# half speed (bisection argument; JAX scaling book "How to scale your model", TPU chapter:
# collectives on axes without wraparound take twice as long).
_NO_WRAP_BANDWIDTH_FACTOR = 0.5


@dataclass(frozen=True, kw_only=True)
class Level:
    """How a group crosses one tier (arrays broadcast over the batch of groups)."""

    index: int  # tier index, 0 = innermost
    tier: Tier
    factor: FloatArray  # f_k: tier-(k-1) domains joined at this level (1 = not crossed)
    inner_ranks: FloatArray  # r_{k-1}: group ranks inside one tier-(k-1) domain (rails)
    unit_stride: FloatArray  # stride measured in tier-(k-1) domains
    units: int  # tier-(k-1) domains inside one tier-k domain
    dims: tuple[int, ...]  # torus extents in units (a ring is a 1-D torus); () otherwise

    @property
    def scale_up(self) -> bool:
        """Tier 0 is the load/store scale-up fabric, and so is an outer tier marked
        ``scale_up`` (CloudMatrix384's Unified Bus outside the on-package die pair); the
        other outer tiers are networks."""
        return self.index == 0 or self.tier.scale_up

    @property
    def is_torus(self) -> bool:
        return bool(self.dims)

    @property
    def active(self) -> npt.NDArray[np.bool_]:
        return self.factor > 1.0

    def bandwidth(self) -> FloatArray:
        """Achievable per-rank bandwidth (bytes/s, per direction) towards the other
        ``f_k - 1`` members at this level. On a full mesh each peer has its own link of
        ``B / (units - 1)``, so a sub-group only reaches ``f_k - 1`` of them."""
        peak = self.tier.bandwidth_bytes_per_s * self.tier.efficiency
        if self.tier.topology == "full_mesh" and self.units > 1:
            links = np.clip(self.factor - 1.0, 1.0, self.units - 1.0)
            return peak * links / (self.units - 1.0)
        return np.broadcast_to(np.float64(peak), self.factor.shape).astype(np.float64)


def group_levels(system: System, group_size: FloatArray, stride: FloatArray) -> tuple[Level, ...]:
    """The levels (one per tier) that groups of ``group_size`` ranks at ``stride`` cross."""
    n = group_size.astype(np.float64)
    s = stride.astype(np.float64)
    levels = []
    inner_ranks = np.ones_like(n)
    inner_size = 1
    last = len(system.tiers) - 1
    for k, tier in enumerate(system.tiers):
        ranks = n if k == last else np.clip(np.floor(tier.group_size / s), 1.0, n)
        ranks = np.maximum(ranks, inner_ranks)
        units = max(tier.group_size // inner_size, 1)
        levels.append(
            Level(
                index=k,
                tier=tier,
                factor=ranks / inner_ranks,
                inner_ranks=inner_ranks,
                unit_stride=np.maximum(1.0, np.floor(s / inner_size)),
                units=units,
                dims=_dims(tier, units, inner_size),
            )
        )
        inner_ranks = ranks
        inner_size = tier.group_size
    return tuple(levels)


def _dims(tier: Tier, units: int, inner_size: int) -> tuple[int, ...]:
    """Torus extents in units of the inner domain. Files give ``torus_dims`` in devices
    (their product is the tier's group size); the inner domain fills the leading dims."""
    if tier.topology == "ring":
        return (units,)
    if tier.topology not in ("torus2d", "torus3d") or not tier.torus_dims:
        return ()
    dims = list(tier.torus_dims)
    if int(np.prod(dims)) == units:
        return tuple(dims)
    left = inner_size
    for i, d in enumerate(dims):
        common = int(np.gcd(left, d))
        dims[i], left = d // common, left // common
    if left != 1 or int(np.prod(dims)) != units:
        return (units,)  # the inner domain does not tile the torus: treat as one ring
    return tuple(d for d in dims if d > 1) or (1,)


@dataclass(frozen=True, kw_only=True)
class TorusSpan:
    """Sub-box of a torus level occupied by the group, per dimension."""

    extent: tuple[FloatArray, ...]  # e_i: distinct coordinates along dim i
    hop: tuple[FloatArray, ...]  # h_i: links between neighbouring members along dim i
    bandwidth: tuple[FloatArray, ...]  # per-rank bandwidth of dim i's two links (bytes/s)


def torus_span(level: Level) -> TorusSpan:
    """Fill the torus dimensions in order (dim 0 fastest) with ``f`` members ``us`` apart.

    Each dimension has two links per device (+ and -), so a bidirectional ring along one
    dimension gets ``B / ndims`` of the device's per-direction bandwidth ``B``."""
    f, us = level.factor, level.unit_stride
    span = f * us
    per_dim = level.tier.bandwidth_bytes_per_s * level.tier.efficiency / len(level.dims)
    extent, hop, bandwidth = [], [], []
    inner = 1.0
    for d in level.dims:
        outer = inner * d
        e = np.clip(np.floor(np.minimum(span, outer) / np.maximum(us, inner)), 1.0, d)
        h = np.where(e > 1.0, np.maximum(1.0, us / inner), 1.0)
        wrap = e * h >= d
        extent.append(e)
        hop.append(h)
        bandwidth.append(per_dim * np.where(wrap, 1.0, _NO_WRAP_BANDWIDTH_FACTOR))
        inner = outer
    return TorusSpan(extent=tuple(extent), hop=tuple(hop), bandwidth=tuple(bandwidth))


@dataclass(frozen=True)
class Cost:
    """Hop latency (at the tiers' reference latency) split by tier class, and transfer."""

    up_latency_s: FloatArray | float
    out_latency_s: FloatArray | float
    transfer_s: FloatArray | float

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.up_latency_s + other.up_latency_s,
            self.out_latency_s + other.out_latency_s,
            self.transfer_s + other.transfer_s,
        )

    def scaled(self, factor: float) -> Cost:
        return Cost(
            self.up_latency_s * factor, self.out_latency_s * factor, self.transfer_s * factor
        )


def hop_cost(level: Level, hops: FloatArray, transfer_s: FloatArray | float = 0.0) -> Cost:
    """``hops`` steps at this level's latency plus ``transfer_s`` seconds of transfer."""
    latency = hops * level.tier.latency_s
    if level.scale_up:
        return Cost(latency, 0.0, transfer_s)
    return Cost(0.0, latency, transfer_s)


def level_reduce_scatter(level: Level, size_bytes: FloatArray) -> Cost:
    """Reduce-scatter (or all-gather) of a ``size_bytes`` buffer among the ``f`` members
    of one level: ring on a switch, one direct step on a full mesh, dimension-ordered rings
    on a torus. Bandwidth term ``(f-1)/f * S / B`` (Thakur, Rabenseifner & Gropp 2005,
    "Optimization of collective communication operations in MPICH", IJHPCA 19(1), sec. 4)."""
    f = level.factor
    if level.is_torus:
        return _torus_reduce_scatter(level, size_bytes)
    transfer = (f - 1.0) / f * size_bytes / level.bandwidth()
    hops = np.where(f > 1.0, 1.0, 0.0) if level.tier.topology == "full_mesh" else f - 1.0
    return hop_cost(level, hops, transfer)


def _torus_reduce_scatter(level: Level, size_bytes: FloatArray) -> Cost:
    """Dimension-ordered reduce-scatter: a bidirectional ring along each dimension in turn,
    each on the buffer left by the previous one. The buffer is split so that every active
    dimension leads one part and the dimensions' links work at once (JAX scaling book, TPU
    chapter: a collective over several torus axes gets the bandwidth of all of them)."""
    span = torus_span(level)
    transfer: FloatArray | float = 0.0
    hops: FloatArray | float = 0.0
    remaining = size_bytes
    active: FloatArray | float = 0.0
    for e, h, bw in zip(span.extent, span.hop, span.bandwidth, strict=True):
        transfer = transfer + (e - 1.0) / e * remaining / bw
        hops = hops + (e - 1.0) * h
        remaining = remaining / e
        active = active + np.where(e > 1.0, 1.0, 0.0)
    return hop_cost(level, np.asarray(hops), np.asarray(transfer) / np.maximum(active, 1.0))


def level_broadcast(level: Level, size_bytes: FloatArray) -> Cost:
    """Pipelined chain broadcast among the members of one level: ``f - 1`` hops and
    ``S / B`` transfer (NCCL's ring broadcast; nccl-tests busbw factor 1)."""
    if level.is_torus:
        span = torus_span(level)
        hops = sum((e - 1.0) * h for e, h in zip(span.extent, span.hop, strict=True))
        active = sum((e > 1.0).astype(np.float64) for e in span.extent)
        slowest = np.minimum.reduce(span.bandwidth)
        return hop_cost(level, np.asarray(hops), size_bytes / (slowest * np.maximum(active, 1.0)))
    return hop_cost(level, level.factor - 1.0, size_bytes / level.bandwidth())


def level_all_to_all_s_per_byte(level: Level) -> tuple[FloatArray, FloatArray]:
    """(hops, seconds per byte leaving the inner domain) of a pairwise all-to-all.

    Switch and full mesh: every pair has a direct path, one round. Torus: along a
    bidirectional ring of ``e`` members each byte travels ``e/4`` links on average over
    ``2e`` directed links, so the exchange of a buffer ``S`` takes ``S e / (4 B_dim)``
    (JAX scaling book: an all-to-all on a ring costs a quarter of an all-gather); the
    dimensions are done in turn."""
    f = level.factor
    if not level.is_torus:
        return np.where(f > 1.0, 1.0, 0.0), 1.0 / level.bandwidth()
    span = torus_span(level)
    per_byte: FloatArray | float = 0.0
    hops: FloatArray | float = 0.0
    for e, h, bw in zip(span.extent, span.hop, span.bandwidth, strict=True):
        per_byte = per_byte + np.where(e > 1.0, e / (4.0 * bw), 0.0)
        hops = hops + (e - 1.0) * h
    off_domain = np.where(f > 1.0, (f - 1.0) / f, 1.0)  # S(f-1)/f of S leaves the rank
    return np.asarray(hops), np.asarray(per_byte) / off_domain


def level_p2p(level: Level, size_bytes: FloatArray) -> Cost:
    """One message between two members of a level: switch one hop at ``B``; full mesh one
    link ``B/(units-1)``; torus the Manhattan distance over one link ``B / (2 ndims)``."""
    if level.is_torus:
        span = torus_span(level)
        hops = sum(
            np.where(e > 1.0, np.minimum(h, d - h), 0.0)
            for e, h, d in zip(span.extent, span.hop, level.dims, strict=True)
        )
        link = level.tier.bandwidth_bytes_per_s * level.tier.efficiency / (2 * len(level.dims))
        return hop_cost(level, np.asarray(hops), size_bytes / link)
    return hop_cost(level, np.ones_like(level.factor), size_bytes / level.bandwidth())
