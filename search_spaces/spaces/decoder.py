"""A decoder-only transformer space (dense or MoE) defined by data: fixed fields + parameter domains.

Every combination of parameter values is a valid architecture *by construction* except two
declared bounds (``top_k <= num_experts``, ``first_dense_layers < num_layers``), which
:meth:`DecoderSpace.suggest` respects with a dynamic integer range and :meth:`grid` with a
mask. The derived shape of a candidate (one code path, numpy, for one or a million):

* ``num_heads = num_kv_heads * max(1, rint(d_model / (head_dim * num_kv_heads)))``: the
  attention width stays close to ``d_model`` and ``num_kv_heads`` always divides
  ``num_heads`` (GQA; ``num_kv_heads`` equal to ``num_heads`` is MHA, 1 is MQA);
* ``d_ff = max(m, rint(ffn_ratio * d_model / m) * m)`` with ``m = round_to``;
* ``d_expert = max(m, rint(d_ff / (granularity * m)) * m)``: granularity
  ``G = d_ff / d_expert`` as in Krajewski et al. 2024 (arXiv 2402.07871, section 3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from search_spaces.architecture import Architecture, architecture_from_dict
from search_spaces.counts import ArchBatch
from search_spaces.errors import SpecError
from search_spaces.spaces.params import Kind, Number, Param, parse_param

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

__all__ = ["RULES", "DecoderSpace", "ParamRule", "parse_domain"]


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class ParamRule:
    """What a parameter name means: its type, smallest value, and an optional upper bound
    set by another parameter (``strict``: bound - 1)."""

    kind: Kind
    minimum: Number
    moe: bool = False
    bound: str = ""
    strict: bool = False
    doc: str = ""


# The parameter vocabulary, in suggestion order (a bound's target comes before it).
RULES: dict[str, ParamRule] = {
    "num_layers": ParamRule(kind="int", minimum=1, doc="transformer blocks"),
    "d_model": ParamRule(kind="int", minimum=1, doc="residual width"),
    "head_dim": ParamRule(kind="int", minimum=1, doc="width of one attention head"),
    "num_kv_heads": ParamRule(kind="int", minimum=1, doc="KV heads (GQA groups)"),
    "ffn_ratio": ParamRule(kind="float", minimum=1e-9, doc="d_ff / d_model"),
    "num_experts": ParamRule(kind="int", minimum=1, moe=True, doc="routed experts"),
    "top_k": ParamRule(
        kind="int", minimum=1, moe=True, bound="num_experts", doc="experts per token"
    ),
    "granularity": ParamRule(kind="float", minimum=1e-9, moe=True, doc="d_ff / d_expert"),
    "num_shared_experts": ParamRule(kind="int", minimum=0, moe=True, doc="always-on experts"),
    "first_dense_layers": ParamRule(
        kind="int",
        minimum=0,
        moe=True,
        bound="num_layers",
        strict=True,
        doc="leading dense layers",
    ),
    "layer_period": ParamRule(kind="int", minimum=1, moe=True, doc="every n-th layer is MoE"),
}
DENSE_REQUIRED = ("num_layers", "d_model", "head_dim", "num_kv_heads", "ffn_ratio")
MOE_REQUIRED = ("num_experts", "top_k", "granularity")
MOE_DEFAULTS: dict[str, Number] = {
    "num_shared_experts": 0,
    "first_dense_layers": 0,
    "layer_period": 1,
}
# The shape a space derives for every candidate (dense fields, then MoE fields).
_SHAPE_KEYS = ("num_layers", "d_model", "num_heads", "num_kv_heads", "head_dim", "d_ff")
_MOE_KEYS = ("num_experts", "top_k", "d_expert", "num_shared_experts")
# Architecture fields a space derives itself; ``base`` may set any other field.
DERIVED_FIELDS = frozenset({"name", *_SHAPE_KEYS, "moe"})


def parse_domain(name: str, spec: object, *, current: Param | None = None) -> Param:
    """Parse the domain of the vocabulary parameter ``name`` (unknown names rejected)."""
    rule = RULES.get(name)
    if rule is None:
        raise SpecError(f"parameters.{name}: unknown; allowed: {', '.join(RULES)}")
    return parse_param(name, spec, kind=rule.kind, minimum=rule.minimum, current=current)


@dataclass(frozen=True, kw_only=True)
class DecoderSpace:
    """A search space over decoder-only transformers; see the module docstring."""

    name: str
    description: str = ""
    base: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    round_to: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.round_to, int) or isinstance(self.round_to, bool):
            raise SpecError(f"round_to: must be a positive integer, got {self.round_to!r}")
        if self.round_to <= 0:
            raise SpecError(f"round_to: must be a positive integer, got {self.round_to!r}")
        bad = sorted(set(self.base) & DERIVED_FIELDS)
        if bad:
            raise SpecError(f"base.{bad[0]}: is derived by the space; search it as a parameter")
        for name in self.params:
            if name not in RULES:
                raise SpecError(f"parameters.{name}: unknown; allowed: {', '.join(RULES)}")
        moe = self.is_moe
        required = DENSE_REQUIRED + (MOE_REQUIRED if moe else ())
        for name in required:
            if name not in self.params:
                raise SpecError(f"parameters.{name}: required parameter is missing")
        if not moe:
            extra = [n for n in self.params if RULES[n].moe]
            if extra:
                raise SpecError(f"parameters.{extra[0]}: MoE parameter needs num_experts")
        self._check_bounds()
        self.template()  # validates base by building one candidate

    @property
    def is_moe(self) -> bool:
        return "num_experts" in self.params

    def parameters(self) -> dict[str, Param]:
        """All parameters in suggestion order, MoE defaults filled in."""
        out = {n: self.params[n] for n in RULES if n in self.params}
        if self.is_moe:
            for n, v in MOE_DEFAULTS.items():
                out.setdefault(n, self._param(n, v))
        return {n: out[n] for n in RULES if n in out}

    def searched(self) -> dict[str, Param]:
        """The parameters with more than one value."""
        return {n: p for n, p in self.parameters().items() if not p.is_fixed}

    def _param(self, name: str, spec: object, current: Param | None = None) -> Param:
        return parse_domain(name, spec, current=current)

    def _check_bounds(self) -> None:
        params = self.parameters()
        for name, p in params.items():
            rule = RULES[name]
            if not rule.bound:
                continue
            limit = params[rule.bound].min_value - (1 if rule.strict else 0)
            worst = p.max_value if not p.is_range else p.min_value
            if worst > limit:
                what = "choices" if not p.is_range else "range low"
                rel = "<" if rule.strict else "<="
                raise SpecError(
                    f"{name}: {what} must be {rel} the smallest {rule.bound} "
                    f"({params[rule.bound].min_value}), got {worst}"
                )

    # ----------------------------------------------------------------- overrides
    def with_overrides(self, overrides: Mapping[str, Any] | None) -> DecoderSpace:
        """A copy with parameter domains replaced (format: see ``spaces/params.py``)."""
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise SpecError(f"space_overrides: must be a mapping, got {type(overrides).__name__}")
        current = self.parameters()
        allowed = [n for n in RULES if n in current]
        new = dict(self.params)
        for key, spec in overrides.items():
            if key not in current:
                colon = " (YAML needs a space after ':')" if ":" in str(key) else ""
                raise SpecError(
                    f"space_overrides.{key}: unknown parameter of {self.name}; "
                    f"allowed: {', '.join(allowed)}{colon}"
                )
            new[key] = self._param(key, spec, current=current[key])
        return dataclasses.replace(self, params=new)

    # ----------------------------------------------------------------- derivation
    def _fixed_values(self) -> dict[str, Number]:
        return {n: p.first() for n, p in self.parameters().items()}

    def derive(self, values: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        """Architecture fields from parameter arrays (all parameters present)."""
        m = float(self.round_to)
        d, hd, kv = values["d_model"], values["head_dim"], values["num_kv_heads"]
        groups = np.maximum(1.0, np.rint(d / (hd * kv)))
        d_ff = np.maximum(m, np.rint(values["ffn_ratio"] * d / m) * m)
        out = {
            "num_layers": values["num_layers"],
            "d_model": d,
            "num_heads": kv * groups,
            "num_kv_heads": kv,
            "head_dim": hd,
            "d_ff": d_ff,
        }
        if self.is_moe:
            out["d_expert"] = np.maximum(m, np.rint(d_ff / (values["granularity"] * m)) * m)
            for n in ("num_experts", "top_k", "num_shared_experts", "first_dense_layers"):
                out[n] = values[n]
            out["layer_period"] = values["layer_period"]
        return out

    def to_architecture(self, params: Mapping[str, Any], *, name: str = "") -> Architecture:
        """Rebuild one candidate from its parameter values (fixed ones may be omitted)."""
        unknown = sorted(set(params) - set(self.parameters()))
        if unknown:
            raise SpecError(
                f"{unknown[0]}: not a parameter of {self.name}; "
                f"allowed: {', '.join(self.parameters())}"
            )
        domains = self.parameters()
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise SpecError(f"{key}: must be a number, got {value!r}")
            if not domains[key].contains(float(value)):
                raise SpecError(
                    f"{key}: {value!r} is outside its domain ({domains[key].describe()})"
                )
        values = {**self._fixed_values(), **params}
        arrays = {k: np.asarray([float(v)], dtype=np.float64) for k, v in values.items()}
        shape = {k: int(v[0]) for k, v in self.derive(arrays).items()}
        fields: dict[str, Any] = dict(self.base)
        fields["name"] = name or f"{self.name}-candidate"
        for key in _SHAPE_KEYS:
            fields[key] = shape[key]
        if self.is_moe:
            fields["moe"] = {k: shape[k] for k in _MOE_KEYS}
            fields["moe"]["first_dense_layers"] = shape["first_dense_layers"]
            fields["moe"]["layer_period"] = shape["layer_period"]
        fields.setdefault("source", f"search space {self.name}")
        try:
            return architecture_from_dict(fields)
        except SpecError as exc:
            raise SpecError(f"space {self.name}: {exc}") from None

    def template(self) -> Architecture:
        return self.to_architecture({})

    # ----------------------------------------------------------------- optuna
    def suggest(self, trial: BaseTrial) -> Architecture:
        """Define-by-run: suggest each searched parameter; bounds narrow later ranges."""
        chosen: dict[str, Number] = {}
        fixed = self._fixed_values()
        for name, p in self.parameters().items():
            if p.is_fixed:
                continue
            rule = RULES[name]
            if rule.bound and p.is_range:
                target = chosen.get(rule.bound, fixed[rule.bound])
                cap = int(target) - (1 if rule.strict else 0)
                steps = (min(int(p.range_high), cap) - int(p.low)) // int(p.step)
                high = int(p.low) + steps * int(p.step)
                chosen[name] = trial.suggest_int(name, int(p.low), high, step=int(p.step))
            elif not p.is_range:
                chosen[name] = trial.suggest_categorical(name, list(p.choices))
            elif p.kind == "int":
                chosen[name] = trial.suggest_int(
                    name, int(p.low), int(p.range_high), step=int(p.step)
                )
            else:
                chosen[name] = trial.suggest_float(
                    name, float(p.low), float(p.range_high), step=float(p.step)
                )
        number = getattr(trial, "number", 0)
        return self.to_architecture(chosen, name=f"{self.name}-t{number}")

    # ----------------------------------------------------------------- grid
    def _feasible_block(self, names: list[str]) -> dict[str, FloatArray]:
        """Every feasible combination of the bounded parameters and their targets."""
        params = self.parameters()
        axes = np.meshgrid(*(params[n].values() for n in names), indexing="ij")
        cols = {n: a.ravel() for n, a in zip(names, axes, strict=True)}
        keep = np.ones(cols[names[0]].shape, dtype=bool)
        for n in names:
            rule = RULES[n]
            if rule.bound:
                limit = cols[rule.bound] - (1.0 if rule.strict else 0.0)
                keep &= cols[n] <= limit
        return {n: c[keep] for n, c in cols.items()}

    def _blocks(self) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
        params = self.parameters()
        bounded = [n for n in params if RULES[n].bound]
        coupled = [n for n in params if n in bounded or any(RULES[b].bound == n for b in bounded)]
        block = self._feasible_block(coupled) if coupled else {}
        free = {n: p.values() for n, p in params.items() if n not in block}
        return block, free

    def size(self) -> int:
        """Number of feasible candidates in the full grid."""
        block, free = self._blocks()
        rows = len(next(iter(block.values()))) if block else 1
        return rows * math.prod(len(v) for v in free.values())

    def grid(self, *, max_candidates: int = 20_000_000) -> tuple[ArchBatch, dict[str, FloatArray]]:
        """Enumerate every feasible candidate as arrays.

        Returns the batch and the searched parameter values per candidate (same order).
        """
        total = self.size()
        if total > max_candidates:
            raise SpecError(
                f"space {self.name}: {total:,} candidates exceed the grid limit "
                f"{max_candidates:,}; narrow it with overrides or use a sampler"
            )
        block, free = self._blocks()
        rows = len(next(iter(block.values()))) if block else 1
        shape = [rows, *(len(v) for v in free.values())]
        index = np.indices(shape, dtype=np.int64).reshape(len(shape), -1)
        values = {n: c[index[0]] for n, c in block.items()}
        for axis, (n, v) in enumerate(free.items(), start=1):
            values[n] = v[index[axis]]
        return self._batch(values), {n: values[n] for n in self.searched()}

    def _batch(self, values: Mapping[str, FloatArray]) -> ArchBatch:
        shape = self.derive(values)
        row = ArchBatch.from_architectures([self.template()])
        arrays: dict[str, Any] = {
            f.name: getattr(row, f.name)[0] for f in dataclasses.fields(ArchBatch)
        }
        for key in _SHAPE_KEYS:
            arrays[key] = shape[key]
        if self.is_moe:
            for key in _MOE_KEYS:
                arrays[key] = shape[key]
            arrays["num_moe_layers"] = np.floor(
                (shape["num_layers"] - shape["first_dense_layers"]) / shape["layer_period"]
            )
        return ArchBatch.from_arrays(**arrays)

    def describe(self) -> list[tuple[str, str, int]]:
        """(name, domain, number of values) per parameter, for ``nas spaces show``."""
        return [(n, p.describe(), p.count) for n, p in self.parameters().items()]
