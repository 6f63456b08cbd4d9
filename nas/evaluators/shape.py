"""Approximate shape and GQA penalties on a scaling-law loss. APPROXIMATE, off by default.

Scaling laws see only parameter and token counts, so every shape with the same N gets the
same loss. Kaplan et al. 2020 (arXiv 2001.08361, section 3.1 and Figure 5) measured how
loss moves with shape at fixed non-embedding N: only a few percent over a wide range;
aspect ratio d_model / n_layer best around 30-90 and within ~1% from ~10 to ~300, feed-forward
ratio d_ff / d_model best around 1-4, attention head dimension flat over a wide range, and
extreme shapes cost several percent. We encode that as a relative loss penalty that is zero
inside the flat band and grows with the squared log-distance outside it, with curvatures
chosen so the penalty reaches about 1% at the edges Kaplan et al. quote. These curvatures
are read off a figure, not fitted: treat the penalty as a tie-breaker between shapes.

GQA: Ainslie et al. 2023 (arXiv 2305.13245, Table 1) report multi-query attention a little
below multi-head quality and grouped-query (8 groups) close to it. We charge
``1% * (ln(h / kv) / ln(h))^2``: 0 for MHA, 1% for MQA, a quarter of that at the half-way
group count. Also approximate.
"""

from __future__ import annotations

import numpy as np

from search_spaces.counts import ArchBatch, FloatArray

__all__ = ["gqa_penalty", "shape_factor", "shape_penalty"]


# (flat band low, high, curvature per squared natural-log unit outside the band)
ASPECT_BAND = (30.0, 90.0, 0.0075)  # ~1% at aspect ratio ~10 and ~300 (Kaplan Fig. 5 left)
FFN_BAND = (1.0, 4.0, 0.012)  # ~2% at ratio 0.25 or 16 (Kaplan Fig. 5 middle, approx.)
HEAD_DIM_BAND = (32.0, 256.0, 0.005)  # ~1% at head dim 8 (Kaplan Fig. 5 right, approx.)
MQA_PENALTY = 0.01  # relative loss of MQA vs MHA (approximate, Ainslie et al. 2023)


def _band_penalty(x: FloatArray, band: tuple[float, float, float]) -> FloatArray:
    lo, hi, k = band
    lx = np.log(np.maximum(x, 1e-12))
    dist = np.maximum(np.log(lo) - lx, 0.0) + np.maximum(lx - np.log(hi), 0.0)
    out: FloatArray = k * dist**2
    return out


def shape_penalty(b: ArchBatch) -> FloatArray:
    """Relative loss penalty (0.01 = +1%) from Kaplan et al. 2020's shape findings."""
    aspect = b.d_model / b.num_layers
    # A gated FFN has three matrices: compare at equal parameters (1.5 x d_ff of a plain FFN).
    ffn_ratio = b.d_ff * np.where(b.gated > 0, 1.5, 1.0) / b.d_model
    out: FloatArray = (
        _band_penalty(aspect, ASPECT_BAND)
        + _band_penalty(ffn_ratio, FFN_BAND)
        + _band_penalty(b.head_dim, HEAD_DIM_BAND)
    )
    return out


def gqa_penalty(b: ArchBatch) -> FloatArray:
    """Relative loss penalty of sharing K/V heads; 0 for MHA and for MLA."""
    h = np.maximum(b.num_heads, 1.0)
    frac = np.where(h > 1, np.log(h / b.num_kv_heads) / np.log(np.maximum(h, 2.0)), 0.0)
    out: FloatArray = np.where(b.is_mla, 0.0, MQA_PENALTY * frac**2)
    return out


def shape_factor(b: ArchBatch) -> FloatArray:
    """Multiplier on the law's loss: ``1 + shape_penalty + gqa_penalty``."""
    out: FloatArray = 1.0 + shape_penalty(b) + gqa_penalty(b)
    return out
