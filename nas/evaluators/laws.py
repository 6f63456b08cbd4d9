"""Published scaling-law coefficient sets, each with its parameter-counting convention.

Loss is cross-entropy in nats per token on the paper's own data and tokenizer: absolute values
compare only within one law (see ``docs/accuracy.md``). Every function is vectorised.

* Dense, Chinchilla form ``L = E + A/N^alpha + B/D^beta`` (Hoffmann et al. 2022, arXiv
  2203.15556, eq. 2 form, fitted values in eq. 10 / Approach 3, N counts *all* parameters
  including embeddings), and the Epoch AI refit of the same data (Besiroglu et al. 2024,
  arXiv 2404.10102, "our estimates" of E, A, B, alpha, beta).
* Routed MoE, Clark et al. 2022 (arXiv 2202.01169): ``log10 L = a log10 N + b log10 Ehat +
  c log10 N log10 Ehat + d`` with the saturating expert count
  ``1/Ehat = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max``; N = parameters of the dense
  base model (= the parameters one token touches), all models trained on ~130B tokens.
* Fine-grained MoE, Krajewski et al. 2024 (arXiv 2402.07871):
  ``L = c + (g/G^gamma + a)/N^alpha + b/D^beta`` with granularity G = d_ff / d_expert and
  N = active non-embedding parameters, fitted at expansion rate 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from nas.evaluators.base import EvaluatorError
from search_spaces.counts import FloatArray

__all__ = [
    "BESIROGLU2024",
    "CLARK2022",
    "DENSE_LAWS",
    "HOFFMANN2022",
    "KRAJEWSKI2024",
    "LAW_NAMES",
    "PARAMS_CONVENTIONS",
    "ChinchillaLaw",
    "ClarkLaw",
    "KrajewskiLaw",
    "ParamsConvention",
    "expert_ratio",
    "moe_effective_params",
]


ParamsConvention = Literal["total", "non_embedding", "active", "active_non_embedding"]
PARAMS_CONVENTIONS: tuple[str, ...] = ("total", "non_embedding", "active", "active_non_embedding")


def _arr(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise EvaluatorError(f"{where}.{name}: must be positive and finite, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ChinchillaLaw:
    """``L(N, D) = E + A / N**alpha + B / D**beta``."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    params_convention: ParamsConvention
    source: str
    valid_params: tuple[float, float]  # range of N the fit saw
    valid_tokens: tuple[float, float]

    def __post_init__(self) -> None:
        _positive(self.name, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)
        if not np.isfinite(self.E) or self.E < 0:
            raise EvaluatorError(f"{self.name}.E: must be >= 0, got {self.E!r}")
        if self.params_convention not in PARAMS_CONVENTIONS:
            raise EvaluatorError(
                f"{self.name}.params_convention: must be one of "
                f"{', '.join(PARAMS_CONVENTIONS)}; got {self.params_convention!r}"
            )

    def loss(self, params: npt.ArrayLike, tokens: npt.ArrayLike) -> FloatArray:
        n, d = _arr(params), _arr(tokens)
        out: FloatArray = self.E + self.A / n**self.alpha + self.B / d**self.beta
        return out

    def compute_optimal(self, flops: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Loss-minimising (N, D) at training compute C = 6 N D (Hoffmann et al. 2022, eq. 4):
        ``N* = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``."""
        c6 = _arr(flops) / 6.0
        s = self.alpha + self.beta
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        n_opt: FloatArray = g * c6 ** (self.beta / s)
        return n_opt, c6 / n_opt

    def in_range(self, params: npt.ArrayLike, tokens: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        n, d = _arr(params), _arr(tokens)
        ok: npt.NDArray[np.bool_] = (
            (n >= self.valid_params[0] / 10)
            & (n <= self.valid_params[1] * 100)
            & (d >= self.valid_tokens[0] / 10)
            & (d <= self.valid_tokens[1] * 100)
        )
        return ok


# Hoffmann et al. 2022 (arXiv 2203.15556), eq. 10, rounded values printed in the paper body.
# Trained range: 70M-16B parameters, 5B-500B tokens (section 3, abstract).
HOFFMANN2022 = ChinchillaLaw(
    name="hoffmann2022",
    E=1.69,
    A=406.4,
    B=410.7,
    alpha=0.34,
    beta=0.28,
    params_convention="total",
    source="Hoffmann et al. 2022, arXiv 2203.15556, eq. 10 (Approach 3), MassiveText",
    valid_params=(7e7, 1.6e10),
    valid_tokens=(5e9, 5e11),
)

# Besiroglu et al. 2024 (arXiv 2404.10102), refit of Approach 3 on data reconstructed from
# Hoffmann et al.'s Figure 4 (Huber delta 1e-3, L-BFGS), "our estimates".
BESIROGLU2024 = ChinchillaLaw(
    name="besiroglu2024",
    E=1.8172,
    A=482.01,
    B=2085.43,
    alpha=0.3478,
    beta=0.3658,
    params_convention="total",
    source="Besiroglu et al. 2024, arXiv 2404.10102, refit of Hoffmann et al. Approach 3",
    valid_params=(7e7, 1.6e10),
    valid_tokens=(5e9, 5e11),
)

DENSE_LAWS: dict[str, ChinchillaLaw] = {law.name: law for law in (HOFFMANN2022, BESIROGLU2024)}


@dataclass(frozen=True, kw_only=True)
class ClarkLaw:
    """Routed-LM law at a fixed token count (Clark et al. 2022, arXiv 2202.01169)."""

    a: float
    b: float
    c: float
    d: float
    e_start: float
    e_max: float
    tokens_ref: float  # every model of the fit was trained on about this many tokens
    source: str
    valid_params: tuple[float, float] = (1.5e7, 1.3e9)  # dense base sizes trained
    valid_experts: tuple[float, float] = (1.0, 512.0)

    def e_hat(self, experts: npt.ArrayLike) -> FloatArray:
        """Saturating expert count; equals ``e_start`` at E = 1 and tends to ``e_max``."""
        e = _arr(experts)
        inner = e - 1.0 + 1.0 / (1.0 / self.e_start - 1.0 / self.e_max)
        out: FloatArray = 1.0 / (1.0 / inner + 1.0 / self.e_max)
        return out

    def loss_at_ref(self, params: npt.ArrayLike, experts: npt.ArrayLike) -> FloatArray:
        """Loss of a routed model with dense base size N and E experts at ``tokens_ref``."""
        x = np.log10(_arr(params))
        e = np.log10(self.e_hat(experts))
        out: FloatArray = 10.0 ** (self.a * x + self.b * e + self.c * x * e + self.d)
        return out

    def effective_params(self, params: npt.ArrayLike, experts: npt.ArrayLike) -> FloatArray:
        """Dense size with the same loss as the routed model (Clark et al.'s effective
        parameter count): solve ``L(N', 1) = L(N, E)`` for N'. Clamped to ``>= N``: the fitted
        interaction term makes routing harmful beyond N ~ 1e12, which the paper does not
        claim; we credit no benefit there instead."""
        x = np.log10(_arr(params))
        e = np.log10(self.e_hat(experts))
        e1 = np.log10(self.e_start)
        x_eff = (x * (self.a + self.c * e) + self.b * (e - e1)) / (self.a + self.c * e1)
        out: FloatArray = 10.0 ** np.maximum(x_eff, x)
        return out


# Clark et al. 2022, S-BASE coefficients of the bilinear fit with saturating expert count.
CLARK2022 = ClarkLaw(
    a=-0.082,
    b=-0.108,
    c=0.009,
    d=1.104,
    e_start=1.847,
    e_max=314.478,
    tokens_ref=1.3e11,
    source="Clark et al. 2022, arXiv 2202.01169, S-BASE fit (base 10 logs)",
)


@dataclass(frozen=True, kw_only=True)
class KrajewskiLaw:
    """Fine-grained MoE law ``L = c + (g/G^gamma + a)/N^alpha + b/D^beta``."""

    a: float
    alpha: float
    b: float
    beta: float
    g: float
    gamma: float
    c: float
    source: str
    valid_params: tuple[float, float] = (1e8, 4e9)  # approximate range of the runs (active)
    valid_granularity: tuple[float, float] = (1.0, 32.0)

    def loss(
        self, params: npt.ArrayLike, tokens: npt.ArrayLike, granularity: npt.ArrayLike
    ) -> FloatArray:
        n, d, gr = _arr(params), _arr(tokens), _arr(granularity)
        out: FloatArray = (
            self.c + (self.g / gr**self.gamma + self.a) / n**self.alpha + self.b / d**self.beta
        )
        return out

    def granularity_multiplier(self, granularity: npt.ArrayLike) -> FloatArray:
        """Factor on N that gives a G = 1 model the same parameter term as granularity G:
        ``((g + a) / (g G^-gamma + a))^(1/alpha)``; 1 at G = 1, increasing in G."""
        gr = _arr(granularity)
        ratio = (self.g + self.a) / (self.g / gr**self.gamma + self.a)
        out: FloatArray = ratio ** (1.0 / self.alpha)
        return out


# Krajewski et al. 2024 (arXiv 2402.07871), fitted coefficients of the fine-grained law
# (expansion rate E = 64, C4 data). Values as listed in shared/reference/SOURCES.md.
KRAJEWSKI2024 = KrajewskiLaw(
    a=18.1,
    alpha=0.115,
    b=30.8,
    beta=0.147,
    g=2.1,
    gamma=0.58,
    c=0.47,
    source="Krajewski et al. 2024, arXiv 2402.07871, fine-grained MoE law (E=64)",
)

LAW_NAMES: tuple[str, ...] = ("auto", "hoffmann2022", "besiroglu2024", "clark2022", "krajewski2024")


def expert_ratio(num_experts: npt.ArrayLike, top_k: npt.ArrayLike) -> FloatArray:
    """Clark's E for a general router: total / active routed-expert parameters
    (num_experts / top_k); 1 for a dense model."""
    e, k = _arr(num_experts), _arr(top_k)
    out: FloatArray = np.where(e > 0, e / np.maximum(k, 1.0), 1.0)
    return out


def moe_effective_params(
    active_params: npt.ArrayLike, *, expert_ratio: npt.ArrayLike, granularity: npt.ArrayLike
) -> FloatArray:
    """Dense-equivalent parameter count of an MoE: active parameters times Clark et al.'s
    effective-parameter gain for ``expert_ratio`` experts and Krajewski et al.'s gain for
    granularity. Equal to ``active_params`` for a dense model (ratio 1, G = 1)."""
    n = _arr(active_params)
    clark = CLARK2022.effective_params(n, expert_ratio) / n
    out: FloatArray = n * clark * KRAJEWSKI2024.granularity_multiplier(granularity)
    return out
