"""Experiment files: YAML validated into typed, frozen pydantic models.

The YAML form is documented field by field in ``docs/experiments.md`` (its place in the
data flow: ``docs/design.md``). Every mistake is reported as one line that names the dotted path
of the offending key and, where the set is closed, the allowed values
(:class:`ExperimentError`, a ``ValueError`` so the CLI prints it and exits 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cost_models.plan import (
    DEFAULT_BATCH,
    DEFAULT_GEN_LEN,
    DEFAULT_PROMPT_LEN,
    InferenceWorkload,
    KvDtype,
    TrainDtype,
    WeightDtype,
)
from cost_models.plan import TrainWorkload as CostTrainWorkload

__all__ = [
    "Accuracy",
    "Constraint",
    "Experiment",
    "ExperimentError",
    "Hardware",
    "HardwareKnobs",
    "KnobRange",
    "PlanSpec",
    "RaySettings",
    "SearchSettings",
    "ServeWorkload",
    "TrainWorkload",
    "dump_experiment",
    "experiment_from_dict",
    "load_experiment",
    "parse_constraint",
]


class ExperimentError(ValueError):
    """An invalid experiment file; one line with the dotted path of the offending key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnobRange(_Model):
    """A continuous hardware knob: a scale factor searched in ``[low, high]``."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    log: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> KnobRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


Knob = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] | KnobRange


class HardwareKnobs(_Model):
    """Co-design knobs: scale factors on a system profile. A list is a set of choices
    (needed by the exhaustive backend), a mapping ``{low, high, log}`` a continuous range."""

    peak_flops_scale: Knob | None = None
    memory_bandwidth_scale: Knob | None = None
    memory_size_scale: Knob | None = None
    link_bandwidth_scale: dict[str, Knob] | None = None  # tier name -> knob


class Hardware(_Model):
    """One system or a list of systems (the system then becomes a search dimension)."""

    system: str | Annotated[list[str], Field(min_length=1)]
    num_devices: int | None = Field(default=None, gt=0)
    knobs: HardwareKnobs | None = None
    # Exponents of the relative hardware cost index prod(scale ** exponent); a modelling
    # assumption (linear in every knob by default), not a published figure: set your own.
    cost_exponents: dict[
        Literal["peak_flops", "memory_bandwidth", "memory_size", "link_bandwidth"], float
    ] = Field(default_factory=dict)

    @property
    def systems(self) -> tuple[str, ...]:
        return (self.system,) if isinstance(self.system, str) else tuple(self.system)


class TrainWorkload(_Model):
    """Pre-training: tokens seen come from ``tokens`` or from a GPU-hour budget.

    Fields: ``seq_len`` (tokens per sequence), ``global_batch_tokens`` (tokens per optimizer
    step, a multiple of ``seq_len``), ``tokens`` (training tokens) or ``budget_gpu_hours``
    (device-hours; the tokens then follow from each candidate's throughput), ``dtype`` (the
    training precision), ``framework``: facts about the training software
    (``cost_models.options``: attention kernel, fused or eager element-wise kernels,
    selective-recompute policy, TP/EP overlap, gradient bytes, MoE imbalance); empty means a
    Megatron-Core/Transformer Engine stack. The cost model's form: :meth:`to_cost_workload`.
    """

    mode: Literal["train"]
    seq_len: int = Field(gt=0)
    global_batch_tokens: int = Field(gt=0)
    tokens: float | None = Field(default=None, gt=0)
    budget_gpu_hours: float | None = Field(default=None, gt=0)
    dtype: TrainDtype = "bf16"
    framework: dict[str, Any] = Field(default_factory=dict)

    @field_validator("framework")
    @classmethod
    def _known_framework(cls, value: dict[str, Any]) -> dict[str, Any]:
        from cost_models.options import train_options

        train_options(value, where="workload.framework")
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> TrainWorkload:
        if (self.tokens is None) == (self.budget_gpu_hours is None):
            raise ValueError("give exactly one of tokens or budget_gpu_hours")
        if self.global_batch_tokens % self.seq_len:
            raise ValueError(
                f"global_batch_tokens ({self.global_batch_tokens}) must be a multiple of "
                f"seq_len ({self.seq_len})"
            )
        return self

    @property
    def context_len(self) -> int:
        """Tokens per sequence (the length FLOPs per token are counted at)."""
        return self.seq_len

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step."""
        return self.global_batch_tokens // self.seq_len

    def to_cost_workload(self) -> CostTrainWorkload:
        """The cost models' :class:`cost_models.plan.TrainWorkload` of this workload."""
        return CostTrainWorkload(seq_len=self.seq_len, dtype=self.dtype)


class ServeWorkload(_Model):
    """Inference: one prefill of ``prompt_len`` then ``gen_len`` decode steps per request.

    Fields: ``batch`` (requests served together), ``prompt_len`` and ``gen_len`` (tokens),
    ``weight_dtype`` and ``kv_dtype`` (storage precision of the weights and the KV cache).
    Defaults are :data:`cost_models.plan.DEFAULT_BATCH` and its neighbours. The cost model's
    form: :meth:`to_cost_workload`."""

    mode: Literal["serve"]
    batch: int = Field(default=DEFAULT_BATCH, gt=0)
    prompt_len: int = Field(default=DEFAULT_PROMPT_LEN, gt=0)
    gen_len: int = Field(default=DEFAULT_GEN_LEN, gt=0)
    weight_dtype: WeightDtype = "bf16"
    kv_dtype: KvDtype = "bf16"

    @property
    def context_len(self) -> int:
        """Tokens per sequence at the end of a request (the length FLOPs per token are
        counted at)."""
        return self.prompt_len + self.gen_len

    def to_cost_workload(self) -> InferenceWorkload:
        """The cost models' :class:`cost_models.plan.InferenceWorkload` of this workload."""
        return InferenceWorkload(
            batch=self.batch,
            prompt_len=self.prompt_len,
            gen_len=self.gen_len,
            weight_dtype=self.weight_dtype,
            kv_dtype=self.kv_dtype,
        )


class Accuracy(_Model):
    """The accuracy evaluator. For serving, the model's training tokens are ``tokens`` or
    ``tokens_per_param`` x total parameters (20: Chinchilla, Hoffmann et al. 2022,
    arXiv 2203.15556, section 3 — compute-optimal ~20 tokens per parameter)."""

    evaluator: str = "scaling_law"
    settings: dict[str, Any] = Field(default_factory=dict)
    tokens: float | None = Field(default=None, gt=0)
    tokens_per_param: float = Field(default=20.0, gt=0)


class PlanSpec(_Model):
    """``auto``: the planner picks per candidate. ``fixed``: the given degrees (others by the
    planner). ``searched``: each listed degree is a categorical search dimension."""

    mode: Literal["auto", "fixed", "searched"] = "auto"
    fixed: dict[Literal["tp", "pp", "dp", "ep", "cp", "micro_batch"], int] = Field(
        default_factory=dict
    )
    searched: dict[
        Literal["tp", "pp", "dp", "ep", "cp", "micro_batch"],
        Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)],
    ] = Field(default_factory=dict)
    recompute: Literal["none", "selective", "full"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PlanSpec:
        if self.mode == "fixed" and not self.fixed:
            raise ValueError("mode fixed needs degrees under fixed, e.g. {tp: 8}")
        if self.mode == "searched" and not self.searched:
            raise ValueError("mode searched needs lists under searched, e.g. {tp: [1, 2, 4, 8]}")
        if self.mode != "fixed" and self.fixed:
            raise ValueError(f"fixed degrees need mode: fixed (mode is {self.mode})")
        if self.mode != "searched" and self.searched:
            raise ValueError(f"searched degrees need mode: searched (mode is {self.mode})")
        return self


class RaySettings(_Model):
    """``search.ray``: how the ``ray`` backend runs trials (see ``docs/ray.md``)."""

    address: str | None = None  # None: a local Ray; "auto": the cluster this runs in; host:port
    concurrency: int | None = Field(default=None, gt=0)  # trials at once; None = search.workers
    cpus_per_trial: float = Field(default=1.0, ge=0)
    gpus_per_trial: float = Field(default=0.0, ge=0)
    scheduler: Literal["none", "asha"] = "none"  # asha: proxy_train only, driven by val loss
    grace_steps: int = Field(default=10, gt=0)  # ASHA: training steps before a first stop
    reduction_factor: float = Field(default=2.0, gt=1)  # ASHA: eta, 1/eta promoted per rung
    max_failures: int = Field(default=2, ge=0)  # retries of a trial whose worker died
    # Tune's storage_path: a path every node sees or a pyarrow URI (s3://, gs://); None: the run dir
    storage: str | None = None


class SearchSettings(_Model):
    """``search``: how candidates are searched. ``backend`` (optuna, exhaustive, ray),
    ``sampler`` (Optuna sampler), ``trials`` (count), ``seed``, ``workers`` (local
    processes), ``storage`` (where the Optuna study lives), ``population_size`` (candidates
    per NSGA generation), ``max_candidates`` (largest grid the exhaustive backend evaluates),
    ``replan_rows`` (exhaustive rows re-planned with the full planner), ``ray`` (the ray
    backend's settings, :class:`RaySettings`)."""

    backend: Literal["optuna", "exhaustive", "ray"] = "optuna"
    sampler: Literal["nsga2", "tpe", "random", "nsga3", "gp"] = "nsga2"
    trials: int = Field(default=100, gt=0)
    seed: int = Field(default=0, ge=0, lt=2**32)  # numpy/Optuna seeds are 32-bit unsigned
    # local processes on one machine: more than 1024 is a typo, not a plan (it would fork them)
    workers: int = Field(default=1, gt=0, le=1024)
    # "sqlite" (study.db in the run directory), "journal" (study.log, safest for many
    # workers) or an RDB URL such as postgresql://user@host/db.
    storage: str = "sqlite"
    population_size: int | None = Field(default=None, gt=1)  # NSGA-II/III generation size
    max_candidates: int = Field(default=5_000_000, gt=0)  # exhaustive refuses larger grids
    # exhaustive with plan auto: re-plan the leading rows with the full planner (0 = off)
    replan_rows: int = Field(default=256, ge=0, le=100_000)
    ray: RaySettings = Field(default_factory=RaySettings)  # the ray backend only

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if value not in ("sqlite", "journal") and "://" not in value:
            raise ValueError("must be sqlite, journal or an RDB URL like sqlite:///x.db")
        if "://" in value and not value.startswith("sqlite"):
            _check_rdb_url(value)
        return value


def _check_rdb_url(url: str) -> None:
    """An RDB storage URL must parse and its database driver must be installed (found here,
    not as a traceback after the run directory was made)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"cannot use {url!r} ({reason}); install its database driver, or use sqlite or journal"
        ) from None


class Constraint(_Model):
    """``metric op bound`` where the bound may be relative: ``0.9 * device`` is 0.9 of the
    device memory of the candidate's system (after any memory-size knob)."""

    metric: str
    op: Literal["<=", ">=", "=="]
    bound: float
    relative_to: Literal["device"] | None = None

    def describe(self) -> str:
        rel = f" * {self.relative_to}" if self.relative_to else ""
        return f"{self.metric} {self.op} {self.bound:g}{rel}"


_BOUND_RE = re.compile(
    r"^\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:\*\s*(\w+))?\s*$"
)


def parse_constraint(metric: str, spec: object) -> Constraint:
    """``"<= 0.05"``, ``">= 1e3"``, ``"<= 0.9 * device"`` or ``true``/``false``."""
    where = f"constraints.{metric}"
    if isinstance(spec, bool):
        return Constraint(metric=metric, op="==", bound=float(spec))
    if isinstance(spec, (int, float)):
        raise ExperimentError(f"{where}: give an operator, e.g. '<= {spec}'")
    match = _BOUND_RE.match(str(spec))
    if match is None:
        raise ExperimentError(
            f"{where}: expected '<= NUMBER', '>= NUMBER', '<= NUMBER * device' or true/false, "
            f"got {spec!r}"
        )
    op, number, rel = match.groups()
    if rel is not None and rel != "device":
        raise ExperimentError(f"{where}: relative bound must be '* device', got '* {rel}'")
    return Constraint(
        metric=metric,
        op="<=" if op in ("<=", "<") else (">=" if op in (">=", ">") else "=="),
        bound=float(number),
        relative_to="device" if rel else None,
    )


class Experiment(_Model):
    """A complete experiment: what to search, on what hardware, for which objectives."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    space: str
    space_overrides: dict[str, Any] = Field(default_factory=dict)
    hardware: Hardware
    workload: Annotated[TrainWorkload | ServeWorkload, Field(discriminator="mode")]
    accuracy: Accuracy = Field(default_factory=Accuracy)
    objectives: Annotated[dict[str, Literal["min", "max"]], Field(min_length=1)]
    constraints: dict[str, str | bool] = Field(default_factory=dict)
    plan: PlanSpec = Field(default_factory=PlanSpec)
    search: SearchSettings = Field(default_factory=SearchSettings)
    references: list[str] | None = None  # catalogue models; None = every catalogue model

    @field_validator("plan", mode="before")
    @classmethod
    def _plan_shorthand(cls, value: object) -> object:
        return {"mode": "auto"} if value == "auto" else value

    @field_validator("constraints")
    @classmethod
    def _constraints_parse(cls, value: dict[str, str | bool]) -> dict[str, str | bool]:
        for metric, spec in value.items():
            parse_constraint(metric, spec)
        return value

    @model_validator(mode="after")
    def _combinations(self) -> Experiment:
        knobs = self.hardware.knobs
        if self.search.backend == "exhaustive" and knobs is not None:
            for name in ("peak_flops_scale", "memory_bandwidth_scale", "memory_size_scale"):
                if isinstance(getattr(knobs, name), KnobRange):
                    raise ValueError(
                        f"hardware.knobs.{name}: the exhaustive backend needs a list of "
                        "choices, not a range"
                    )
            for tier, knob in (knobs.link_bandwidth_scale or {}).items():
                if isinstance(knob, KnobRange):
                    raise ValueError(
                        f"hardware.knobs.link_bandwidth_scale.{tier}: the exhaustive backend "
                        "needs a list of choices, not a range"
                    )
        if self.search.backend == "exhaustive" and self.accuracy.evaluator == "proxy_train":
            raise ValueError(
                "search.backend: exhaustive needs a vectorised evaluator (scaling_law), "
                "not proxy_train"
            )
        if self.search.sampler == "random" and self.search.population_size is not None:
            raise ValueError("search.population_size: only for the nsga2 and nsga3 samplers")
        return self

    def parsed_constraints(self) -> tuple[Constraint, ...]:
        return tuple(parse_constraint(m, s) for m, s in self.constraints.items())


# --- loading and error formatting ---------------------------------------------------------


_MISSING = object()


def _child(node: object, item: int | str) -> object:
    """``node[item]`` for a mapping key or a list index present in the input, else a marker."""
    if isinstance(node, Mapping) and item in node:
        return node[item]
    if isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
        return node[item]
    return _MISSING


def _dotted(loc: tuple[int | str, ...], data: object) -> tuple[str, object]:
    """The dotted path of ``loc`` in the input, skipping union tags that are not keys."""
    parts: list[str] = []
    node: object = data
    for item in loc:
        child = _child(node, item)
        if child is not _MISSING:
            parts.append(str(item))
            node = child
        elif isinstance(node, Mapping) and not isinstance(item, int) and item not in node:
            if item in ("train", "serve", "KnobRange") or "[" in str(item):
                continue  # a tagged-union or union-member label, not a key of the input
            parts.append(str(item))
            node = None
    return ".".join(parts) or "<top level>", node


def _allowed_keys(loc: tuple[int | str, ...], data: object) -> list[str]:
    """The field names allowed next to an unknown key (walking the models along ``loc``)."""
    model: type[BaseModel] | None = Experiment
    node: object = data
    for item in loc[:-1]:
        if model is None:
            return []
        if item in ("train", "serve"):
            model = TrainWorkload if item == "train" else ServeWorkload
            continue
        field = model.model_fields.get(str(item))
        node = node.get(item) if isinstance(node, Mapping) else None
        if field is None:
            return []
        ann = field.annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)]
        model = next((a for a in candidates if issubclass(a, BaseModel)), None)
        if str(item) == "workload" and isinstance(node, Mapping):
            model = ServeWorkload if node.get("mode") == "serve" else TrainWorkload
    return sorted(model.model_fields) if model is not None else []


def _format_error(exc: ValidationError, data: object, source: str) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    path, _ = _dotted(loc, data)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc, data)
        msg = "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path, msg = f"{path}.mode", "must be train or serve"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    prefix = f"{source}: " if source else ""
    head = msg.split(":", 1)[0]
    if not loc or head == path or head.startswith(f"{path}."):
        return f"{prefix}{msg}{more}"  # the message already names its key
    return f"{prefix}{path}: {msg}{more}"


def experiment_from_dict(data: Mapping[str, Any], *, source: str = "") -> Experiment:
    """Validate a mapping into an :class:`Experiment`; errors are one line."""
    if not isinstance(data, Mapping):
        raise ExperimentError(f"{source or 'experiment'}: must be a mapping of keys")
    try:
        return Experiment.model_validate(dict(data))
    except ValidationError as exc:
        raise ExperimentError(_format_error(exc, data, source)) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment YAML file."""
    p = Path(path)
    if not p.is_file():
        raise ExperimentError(f"{p}: experiment file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        line = str(exc).replace("\n", " ")
        raise ExperimentError(f"{p}: not valid YAML: {line}") from None
    return experiment_from_dict(data, source=str(p))


def dump_experiment(experiment: Experiment) -> str:
    """The resolved experiment (defaults filled in) as YAML text."""
    return yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False)
