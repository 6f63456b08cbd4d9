"""Parallel plans and workloads: the inputs of every cost model besides model and system.

Degrees follow Megatron-Core: ``tp * pp * dp * cp`` devices; expert parallelism ``ep``
divides ``dp * cp * tp`` (experts are sharded across data-parallel ranks, Megatron-Core
MoE docs). Validation raises :class:`PlanError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Recompute = Literal["none", "selective", "full"]
RECOMPUTE: tuple[str, ...] = get_args(Recompute)
TrainDtype = Literal["bf16", "fp16", "fp8"]
WeightDtype = Literal["bf16", "fp16", "fp8", "int8", "int4"]
KvDtype = Literal["bf16", "fp16", "fp8", "int8"]
ZERO_STAGES: tuple[int, ...] = (0, 1, 2, 3)
Mode = Literal["train", "prefill", "decode"]


class PlanError(ValueError):
    """An invalid parallel plan or workload; one line naming the field."""


# The integer degrees and sizes of a :class:`ParallelPlan`, each at least 1.
POSITIVE_PLAN_FIELDS: tuple[str, ...] = (
    "tp",
    "pp",
    "dp",
    "ep",
    "cp",
    "vpp",
    "dp_replicate",
    "micro_batch",
    "global_batch",
)


# Upper bound of every integer size here (degrees, batches, sequence lengths): 2^24 (16.8M)
# devices, sequences or tokens per sequence is beyond any machine or published run (the
# longest context windows are ~1e7 tokens), so a larger value is a typo or unit slip.
MAX_SIZE = 2**24


def check_positive(name: str, value: object) -> int:
    """``value`` if it is an integer in [1, MAX_SIZE] (not a bool), else a :class:`PlanError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SIZE:
        raise PlanError(f"{name}: must be a positive integer <= {MAX_SIZE}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    """``value`` must be one of ``choices``; a bool never stands for an integer choice."""
    bool_for_int = isinstance(value, bool) and not any(isinstance(c, bool) for c in choices)
    if bool_for_int or value not in choices:
        raise PlanError(f"{name}: must be one of {', '.join(map(str, choices))}; got {value!r}")


def check_replicas(dp: int, dp_replicate: int, zero: int) -> None:
    """One-line error unless ``dp_replicate`` divides ``dp`` and, above 1, shards a ZeRO state."""
    if dp % dp_replicate:
        raise PlanError(f"dp_replicate: must divide dp ({dp}), got {dp_replicate}")
    if dp_replicate > 1 and zero == 0:
        raise PlanError(
            f"dp_replicate: replicas of a sharded state need zero 1, 2 or 3; got zero=0 "
            f"with dp_replicate={dp_replicate}"
        )


@dataclass(frozen=True, kw_only=True)
class ParallelPlan:
    """How one training or serving job is laid out on ``tp * pp * dp * cp`` devices.

    Degrees (counts of devices): ``tp`` tensor, ``pp`` pipeline, ``dp`` data, ``ep`` expert
    (drawn from ``dp * cp * tp``, Megatron-Core), ``cp`` context parallel; ``vpp`` virtual
    pipeline stages per device. ``micro_batch`` and ``global_batch`` are in sequences (per
    micro-batch and per optimizer step); ``zero`` is the ZeRO stage (3 = FSDP);
    ``dp_replicate`` splits the data-parallel ranks into that many replicas, each sharding the
    ZeRO state over ``dp * cp / dp_replicate`` ranks (hybrid sharding: PyTorch FSDP's
    ``HYBRID_SHARD``, torchtitan's ``data_parallel_replicate_degree``, PaLM's FSDP within a
    pod and data parallelism across pods); ``recompute`` what the backward pass recomputes.
    Validated when built (:class:`PlanError` naming the field)."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    cp: int = 1
    vpp: int = 1  # virtual pipeline stages per device (interleaved 1F1B when > 1)
    sequence_parallel: bool = False
    micro_batch: int = 1  # sequences per micro-batch
    global_batch: int = 1  # sequences per optimizer step
    zero: int = 0  # 0-3; 3 = fully sharded (FSDP)
    dp_replicate: int = 1  # replicas of the ZeRO-sharded state across the dp ranks
    recompute: Recompute = "none"

    def __post_init__(self) -> None:
        for name in POSITIVE_PLAN_FIELDS:
            check_positive(name, getattr(self, name))
        check_choice("zero", self.zero, ZERO_STAGES)
        check_choice("recompute", self.recompute, RECOMPUTE)
        if (self.dp * self.cp * self.tp) % self.ep:
            raise PlanError(
                f"ep: must divide dp*cp*tp ({self.dp * self.cp * self.tp}), got {self.ep}"
            )
        if self.global_batch % (self.micro_batch * self.dp):
            raise PlanError(
                f"global_batch: must be a multiple of micro_batch*dp "
                f"({self.micro_batch * self.dp}), got {self.global_batch}"
            )
        if self.vpp > 1 and self.pp == 1:
            raise PlanError("vpp: interleaving needs pp > 1")
        check_replicas(self.dp, self.dp_replicate, self.zero)
        replica = self.dp // self.dp_replicate * self.cp * self.tp
        if self.dp_replicate > 1 and replica % self.ep:
            raise PlanError(
                f"ep: must divide the devices of one replica, dp/dp_replicate*cp*tp ({replica}), "
                f"got {self.ep}"
            )

    @property
    def num_devices(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    @property
    def num_microbatches(self) -> int:
        """Micro-batches per pipeline per step (gradient-accumulation steps)."""
        return self.global_batch // (self.micro_batch * self.dp)


@dataclass(frozen=True, kw_only=True)
class TrainWorkload:
    """What a training step processes: ``seq_len`` tokens per sequence and the compute
    ``dtype`` of the GEMMs (bf16, fp16 or fp8)."""

    seq_len: int
    dtype: TrainDtype = "bf16"

    def __post_init__(self) -> None:
        check_positive("seq_len", self.seq_len)
        check_choice("dtype", self.dtype, get_args(TrainDtype))


# The default serving request (one user, a 1,024-token prompt, 128 generated tokens): the
# project's own choice of a short chat turn, not a published figure. Used by
# InferenceWorkload, the experiment file's serve workload and ``nas estimate``.
DEFAULT_BATCH = 1
DEFAULT_PROMPT_LEN = 1024
DEFAULT_GEN_LEN = 128


@dataclass(frozen=True, kw_only=True)
class InferenceWorkload:
    """What a serving request batch is: ``batch`` sequences of ``prompt_len`` prompt tokens
    generating ``gen_len`` tokens each, weights in ``weight_dtype`` and the KV cache in
    ``kv_dtype``."""

    batch: int = DEFAULT_BATCH
    prompt_len: int = DEFAULT_PROMPT_LEN
    gen_len: int = DEFAULT_GEN_LEN
    weight_dtype: WeightDtype = "bf16"
    kv_dtype: KvDtype = "bf16"

    def __post_init__(self) -> None:
        for name in ("batch", "prompt_len", "gen_len"):
            check_positive(name, getattr(self, name))
        check_choice("weight_dtype", self.weight_dtype, get_args(WeightDtype))
        check_choice("kv_dtype", self.kv_dtype, get_args(KvDtype))
