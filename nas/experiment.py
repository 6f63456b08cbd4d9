"""Experiment files: YAML validated into typed, frozen pydantic models.

The YAML form is documented field by field in ``docs/experiments.md`` (its place in the
data flow: ``docs/design.md``). Every mistake is reported as one line that names the dotted path
of the offending key and, where the set is closed, the allowed values
(:class:`ExperimentError`, a ``ValueError`` so the CLI prints it and exits 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from cost_models.options import ServeOptions, TrainOptions
from cost_models.plan import (
    DEFAULT_BATCH,
    DEFAULT_GEN_LEN,
    DEFAULT_PROMPT_LEN,
    ZERO_STAGES,
    InferenceWorkload,
    KvDtype,
    TrainDtype,
    WeightDtype,
)
from cost_models.plan import TrainWorkload as CostTrainWorkload
from nas import constraints as _constraints
from nas.bounds import (
    MAX_BATCH_TOKENS,
    MAX_BUDGET_GPU_HOURS,
    MAX_DEGREE,
    MAX_DEVICES,
    MAX_KNOB_SCALE,
    MAX_SEQ_LEN,
    MAX_SERVE_BATCH,
    MAX_TOKENS,
    MIN_BUDGET_GPU_HOURS,
    MIN_KNOB_SCALE,
    MIN_TOKENS,
)
from nas.constraints import Constraint
from nas.experiment_errors import format_error
from nas.experiment_numbers import Float, Int, refuse_text_facts
from nas.explain import MEMORY_HEADROOM

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
    # allow_inf_nan=False: .inf / .nan are refused in every float field (issue 17); numbers
    # are Int / Float (nas.experiment_numbers): text and booleans are refused
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class KnobRange(_Model):
    """A continuous hardware knob: a scale factor searched in ``[low, high]``."""

    low: Float = Field(ge=MIN_KNOB_SCALE, le=MAX_KNOB_SCALE)
    high: Float = Field(ge=MIN_KNOB_SCALE, le=MAX_KNOB_SCALE)
    log: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> KnobRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


def _knob_kind(value: object) -> str:
    return "range" if isinstance(value, (Mapping, KnobRange)) else "choices"


# A list of choices or a {low, high, log} range, told apart by shape (one message, not one
# per union member)
Knob = Annotated[
    Annotated[
        list[Annotated[Float, Field(ge=MIN_KNOB_SCALE, le=MAX_KNOB_SCALE)]],
        Field(min_length=1),
        Tag("choices"),
    ]
    | Annotated[KnobRange, Tag("range")],
    Discriminator(_knob_kind),
]


class HardwareKnobs(_Model):
    """Co-design knobs: scale factors on a system profile. A list is a set of choices
    (needed by the exhaustive backend), a mapping ``{low, high, log}`` a continuous range."""

    peak_flops_scale: Knob | None = None
    memory_bandwidth_scale: Knob | None = None
    memory_size_scale: Knob | None = None
    link_bandwidth_scale: dict[str, Knob] | None = None  # tier name -> knob


class Hardware(_Model):
    """One system or a list of systems (the system then becomes a search dimension)."""

    system: str | list[str]
    num_devices: Int | None = Field(default=None, gt=0, le=MAX_DEVICES)
    knobs: HardwareKnobs | None = None
    # Exponents of the relative hardware cost index prod(scale ** exponent); a modelling
    # assumption (linear in every knob by default), not a published figure: set your own.
    # |exponent| <= 10: with scales <= 1e3 the index then stays within float range.
    cost_exponents: dict[
        Literal["peak_flops", "memory_bandwidth", "memory_size", "link_bandwidth"],
        Annotated[Float, Field(ge=-10, le=10)],
    ] = Field(default_factory=dict)
    # Share of device memory a training or serving plan may use: the planner's `fits` (and so the
    # constraint `fits: true`); the same setting and default as `nas estimate
    # --memory-headroom` (nas.explain.MEMORY_HEADROOM, where the choice is explained).
    memory_headroom: Float = Field(default=MEMORY_HEADROOM, gt=0, le=1)

    @field_validator("system")
    @classmethod
    def _systems_listed_once(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names:
            raise ValueError("give a system name or a non-empty list of names")
        if any(not n.strip() for n in names):
            raise ValueError("a system name must not be empty")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]!r} is listed twice; list each system once")
        return value

    @property
    def systems(self) -> tuple[str, ...]:
        return (self.system,) if isinstance(self.system, str) else tuple(self.system)


class _Software(_Model):
    """``stack`` (a stack name of ``cost_models.stacks`` or a stack file) and ``framework``
    (single facts on top), checked when the workload is built: :meth:`options` resolves them."""

    stack: str | None = None
    framework: dict[str, Any] = Field(default_factory=dict)

    @field_validator("framework")
    @classmethod
    def _numbers_not_text(cls, value: dict[str, Any]) -> dict[str, Any]:
        refuse_text_facts(value, where="workload.framework")
        return value

    @model_validator(mode="after")
    def _known_stack(self) -> _Software:
        self.options()
        return self

    def options(self) -> TrainOptions | ServeOptions:
        raise NotImplementedError


class TrainWorkload(_Software):
    """Pre-training: tokens seen come from ``tokens`` or from a GPU-hour budget.

    Fields: ``seq_len`` (tokens per sequence), ``global_batch_tokens`` (tokens per optimizer
    step, a multiple of ``seq_len``), ``tokens`` (training tokens) or ``budget_gpu_hours``
    (device-hours; the tokens then follow from each candidate's throughput), ``dtype`` (the
    training precision), ``stack``: the training software (a stack name of
    ``cost_models.stacks`` or a stack file; default ``megatron-core``), ``framework``: single
    facts on top of the stack (``cost_models.options.TRAIN_FACTS``: attention kernel, fused or
    eager element-wise kernels, recompute policy, TP/DP/EP overlap, FSDP prefetch, gradient
    bytes, MoE imbalance). The cost model's form: :meth:`to_cost_workload`; the software's:
    :meth:`options`.
    """

    mode: Literal["train"]
    seq_len: Int = Field(gt=0, le=MAX_SEQ_LEN)
    global_batch_tokens: Int = Field(gt=0, le=MAX_BATCH_TOKENS)
    tokens: Float | None = Field(default=None, ge=MIN_TOKENS, le=MAX_TOKENS)
    budget_gpu_hours: Float | None = Field(
        default=None, ge=MIN_BUDGET_GPU_HOURS, lt=MAX_BUDGET_GPU_HOURS
    )
    dtype: TrainDtype = "bf16"

    def options(self) -> TrainOptions:
        """The training stack's facts with ``framework`` on top."""
        from cost_models.stacks import resolve_train

        return resolve_train(
            self.stack, self.framework, flag="workload.stack", where="workload.framework"
        )[1]

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


class ServeWorkload(_Software):
    """Inference: one prefill of ``prompt_len`` then ``gen_len`` decode steps per request.

    Fields: ``batch`` (requests served together), ``prompt_len`` and ``gen_len`` (tokens),
    ``weight_dtype`` and ``kv_dtype`` (storage precision of the weights and the KV cache),
    ``stack``: the serving engine (a stack name of ``cost_models.stacks`` or a stack file;
    default ``vllm``), ``framework``: single facts on top of it
    (``cost_models.options.SERVE_FACTS``: per-iteration host time, kernel launch floor, engine
    memory). Defaults are :data:`cost_models.plan.DEFAULT_BATCH` and its neighbours. The cost
    model's form: :meth:`to_cost_workload`; the engine's: :meth:`options`."""

    mode: Literal["serve"]
    batch: Int = Field(default=DEFAULT_BATCH, gt=0, le=MAX_SERVE_BATCH)
    prompt_len: Int = Field(default=DEFAULT_PROMPT_LEN, gt=0, le=MAX_SEQ_LEN)
    gen_len: Int = Field(default=DEFAULT_GEN_LEN, gt=0, le=MAX_SEQ_LEN)
    weight_dtype: WeightDtype = "bf16"
    kv_dtype: KvDtype = "bf16"

    def options(self) -> ServeOptions:
        """The serving stack's facts with ``framework`` on top."""
        from cost_models.stacks import resolve_serve

        return resolve_serve(
            self.stack, self.framework, flag="workload.stack", where="workload.framework"
        )[1]

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
    tokens: Float | None = Field(default=None, ge=MIN_TOKENS, le=MAX_TOKENS)
    # 0.1 to 1e5 tokens per parameter: below, the model has not seen its own size in data;
    # above, 50x the most over-trained published models (~2,000, Llama 3 8B)
    tokens_per_param: Float = Field(default=20.0, ge=0.1, le=1e5)


# plan fields an experiment may fix or search: parallel degrees, the micro-batch, the ZeRO
# stage and hybrid-sharding replicas (training only for the last two)
PlanKey = Literal["tp", "pp", "dp", "ep", "cp", "micro_batch", "zero", "dp_replicate"]
TRAIN_ONLY_PLAN_KEYS = ("zero", "dp_replicate")


class PlanSpec(_Model):
    """``auto``: the planner picks per candidate. ``fixed``: the given degrees (others by the
    planner). ``searched``: each listed degree is a categorical search dimension."""

    mode: Literal["auto", "fixed", "searched"] = "auto"
    fixed: dict[PlanKey, Annotated[Int, Field(ge=0, le=MAX_DEGREE)]] = Field(default_factory=dict)
    searched: dict[
        PlanKey,
        Annotated[list[Annotated[Int, Field(ge=0, le=MAX_DEGREE)]], Field(min_length=1)],
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


def _check_plan_values(plan: PlanSpec) -> None:
    """Degrees are >= 1; ``zero`` is a ZeRO stage (0-3)."""
    lists = {"fixed": {k: [v] for k, v in plan.fixed.items()}, "searched": plan.searched}
    for where, values in lists.items():
        for key, given in values.items():
            for v in given:
                if key == "zero" and v not in ZERO_STAGES:
                    allowed = ", ".join(map(str, ZERO_STAGES))
                    raise ValueError(
                        f"plan.{where}.zero: {v} is not a ZeRO stage; allowed: {allowed}"
                    )
                if key != "zero" and v < 1:
                    raise ValueError(f"plan.{where}.{key}: must be >= 1, got {v}")


class RaySettings(_Model):
    """``search.ray``: how the ``ray`` backend runs trials (see ``docs/ray.md``)."""

    address: str | None = None  # None: a local Ray; "auto": the cluster this runs in; host:port
    # trials at once; None = search.workers (bounded like the device count)
    concurrency: Int | None = Field(default=None, gt=0, le=MAX_DEVICES)
    # per trial: no node has more than 1,024 CPUs or 64 accelerators
    cpus_per_trial: Float = Field(default=1.0, ge=0, le=1024)
    gpus_per_trial: Float = Field(default=0.0, ge=0, le=64)
    scheduler: Literal["none", "asha"] = "none"  # asha: proxy_train only, driven by val loss
    # ASHA: training steps before a first stop (a proxy run is at most ~1e9 steps)
    grace_steps: Int = Field(default=10, gt=0, le=10**9)
    # ASHA: eta, 1/eta promoted per rung (eta above 1,000 promotes nothing)
    reduction_factor: Float = Field(default=2.0, gt=1, le=1000)
    max_failures: Int = Field(default=2, ge=0, le=1000)  # retries of a trial whose worker died
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
    # every trial is a row of the study database; 1e7 is a week at 16 trials/s, so more is a typo
    trials: Int = Field(default=100, gt=0, le=10_000_000)
    seed: Int = Field(default=0, ge=0, lt=2**32)  # numpy/Optuna seeds are 32-bit unsigned
    # local processes on one machine: more than 1024 is a typo, not a plan (it would fork them)
    workers: Int = Field(default=1, gt=0, le=1024)
    # "sqlite" (study.db in the run directory), "journal" (study.log, safest for many
    # workers) or an RDB URL such as postgresql://user@host/db.
    storage: str = "sqlite"
    # NSGA-II/III generation size (at most the trial bound above)
    population_size: Int | None = Field(default=None, gt=1, le=10_000_000)
    # exhaustive refuses larger grids; 1e9 rows of ~50 float columns is ~400 GB of memory
    max_candidates: Int = Field(default=5_000_000, gt=0, le=10**9)
    # exhaustive with plan auto: re-plan the leading rows with the full planner (0 = off)
    replan_rows: Int = Field(default=256, ge=0, le=100_000)
    ray: RaySettings = Field(default_factory=RaySettings)  # the ray backend only

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if value not in ("sqlite", "journal") and "://" not in value:
            raise ValueError("must be sqlite, journal or an RDB URL like sqlite:///x.db")
        if "://" in value and not value.startswith("sqlite"):
            _check_rdb_url(value)
        if value.startswith("sqlite://") and not value.split("://", 1)[1].strip("/"):
            raise ValueError(f"{value!r} names no database file; write sqlite:////abs/path/x.db")
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


def parse_constraint(metric: str, spec: object) -> Constraint:
    """``"<= 0.05"``, ``">= 1e3"``, ``"<= 0.9 * device"`` or ``true``/``false`` (for a
    boolean metric); see :mod:`nas.constraints`. Errors are :class:`ExperimentError`."""
    try:
        return _constraints.parse_constraint(metric, spec)
    except _constraints.ConstraintError as exc:
        raise ExperimentError(str(exc)) from None


class Experiment(_Model):
    """A complete experiment: what to search, on what hardware, for which objectives."""

    # a run directory is named <name>-<YYYYmmdd-HHMMSS>[-N]: 200 + 19 stays under 255 bytes
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200)
    description: str = ""
    space: str
    space_overrides: dict[str, Any] = Field(default_factory=dict)
    hardware: Hardware
    workload: Annotated[TrainWorkload | ServeWorkload, Field(discriminator="mode")]
    accuracy: Accuracy = Field(default_factory=Accuracy)
    objectives: Annotated[dict[str, Literal["min", "max"]], Field(min_length=1)]
    # a number is accepted here only so that parse_constraint can say "give an operator"
    constraints: dict[str, str | bool | float] = Field(default_factory=dict)
    plan: PlanSpec = Field(default_factory=PlanSpec)
    search: SearchSettings = Field(default_factory=SearchSettings)
    references: list[str] | None = None  # catalogue models; None = every catalogue model

    @field_validator("plan", mode="before")
    @classmethod
    def _plan_shorthand(cls, value: object) -> object:
        return {"mode": "auto"} if value == "auto" else value

    @field_validator("constraints")
    @classmethod
    def _constraints_parse(
        cls, value: dict[str, str | bool | float]
    ) -> dict[str, str | bool | float]:
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
        _check_plan_values(self.plan)
        if isinstance(self.workload, ServeWorkload):
            for where in ("fixed", "searched"):
                for key in TRAIN_ONLY_PLAN_KEYS:
                    if key in getattr(self.plan, where):
                        raise ValueError(
                            f"plan.{where}.{key}: only for training workloads (workload.mode "
                            "is serve; serving replicates weights, it shards no optimizer state)"
                        )
        if self.search.sampler == "random" and self.search.population_size is not None:
            raise ValueError("search.population_size: only for the nsga2 and nsga3 samplers")
        return self

    def parsed_constraints(self) -> tuple[Constraint, ...]:
        return tuple(parse_constraint(m, s) for m, s in self.constraints.items())


# --- loading and error formatting ---------------------------------------------------------


def experiment_from_dict(data: Mapping[str, Any], *, source: str = "") -> Experiment:
    """Validate a mapping into an :class:`Experiment`; errors are one line."""
    from nas.safe_yaml import YamlFileError, check_int64

    if not isinstance(data, Mapping):
        raise ExperimentError(f"{source or 'experiment'}: must be a mapping of keys")
    try:
        check_int64(dict(data), where="")  # refused here, not when a parquet column overflows
    except YamlFileError as exc:
        raise ExperimentError(f"{source}: {exc}" if source else str(exc)) from None
    try:
        return Experiment.model_validate(dict(data))
    except ValidationError as exc:
        workloads: dict[str, type[BaseModel]] = {"train": TrainWorkload, "serve": ServeWorkload}
        line = format_error(exc, data, source=source, root=Experiment, workloads=workloads)
        raise ExperimentError(line) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment YAML file."""
    from nas.safe_yaml import YamlFileError, load_yaml_file

    p = Path(path)
    if not p.is_file():
        raise ExperimentError(f"{p}: experiment file not found")
    try:
        data = load_yaml_file(p)  # UTF-8, depth cap, 64-bit integers: one line naming p
    except YamlFileError as exc:
        raise ExperimentError(str(exc)) from None
    return experiment_from_dict(data, source=str(p))


def dump_experiment(experiment: Experiment) -> str:
    """The resolved experiment (defaults filled in) as YAML text."""
    return yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False)
