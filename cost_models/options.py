"""Facts about the training and serving software that change their cost:
:class:`TrainOptions` and :class:`ServeOptions`, and their construction from stack files
(:mod:`cost_models.stacks`) and user overrides (experiment files' ``workload.framework``,
``nas estimate --framework KEY=VALUE``) with one-line errors that name the key and its
allowed values.

The defaults describe a Megatron-Core/Transformer Engine stack: the device's best fused
attention, fused element-wise kernels, attention-core selective recompute, no TP or expert
all-to-all overlap, fp32 gradient reduction, a 1.1 MoE imbalance and no node limit.
Shared by the training model (:mod:`cost_models.train`) and the search (``nas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "ATTENTION_KERNELS",
    "ELEMENTWISE",
    "FP8_CASTS",
    "FRAMEWORK_KEYS",
    "SELECTIVE_POLICIES",
    "SERVE_FACTS",
    "TRAIN_FACTS",
    "AttentionKernel",
    "Elementwise",
    "FactSchema",
    "Fp8Casts",
    "SelectivePolicy",
    "ServeOptions",
    "TrainOptions",
    "parse_pairs",
    "train_options",
]

AttentionKernel = Literal["flash", "flash2", "unfused"]
ATTENTION_KERNELS: tuple[str, ...] = get_args(AttentionKernel)
Elementwise = Literal["fused", "eager"]
ELEMENTWISE: tuple[str, ...] = get_args(Elementwise)
Fp8Casts = Literal["per_gemm", "fused"]
FP8_CASTS: tuple[str, ...] = get_args(Fp8Casts)
# What ``recompute: selective`` re-runs; the policies are defined in cost_models.train.recompute
SelectivePolicy = Literal["attention", "alternate_mm", "mla_up_proj", "mla_up_proj_mlp", "dots"]
SELECTIVE_POLICIES: tuple[str, ...] = get_args(SelectivePolicy)


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Facts about the training software that change its cost (not tuning knobs).

    ``attention_kernel``: ``flash`` (the device's best fused kernel, no S x S matrix; Dao et
    al. 2022), ``flash2`` (FlashAttention-2, e.g. PyTorch SDPA's default flash backend, slower
    than FA3/cuDNN on Hopper; see the device's ``attention_efficiency_fa2``) or ``unfused``
    (Megatron-LM 2021-22: batched GEMMs plus a fused scale-mask-softmax that materialises
    the S x S scores). ``dropout``: dropout after attention and FFN and on the attention
    probabilities (GPT-3-era configs). ``moe_imbalance``: tokens on the busiest expert rank
    over the mean; 1.0 is perfect balance. ``ep_overlap``/``tp_overlap``: the framework hides
    expert all-to-alls / TP collectives behind compute. ``overhead_bytes``: framework memory beyond
    tensors (CUDA context, cuBLAS workspaces, NCCL buffers, allocator slack).
    ``elementwise``: ``fused`` (Megatron/Transformer Engine kernels, or ``torch.compile``) or
    ``eager`` (PyTorch eager mode: each element-wise op its own kernel, see
    :mod:`cost_models.train.memory_ops`). ``selective_recompute``: what ``recompute: selective``
    re-runs: ``attention`` (the attention core; Korthikanti et al. 2022, Megatron-LM),
    ``alternate_mm`` (torchtitan's op-level selective activation checkpointing),
    ``mla_up_proj_mlp`` (Megatron-Core recompute modules ``mla_up_proj`` and ``mlp``) or
    ``dots`` (MaxText ``remat_policy: minimal``: every weight matmul's output saved); see
    :mod:`cost_models.train.recompute`. ``fp8_casts`` (FP8 training only): ``per_gemm`` (every
    GEMM casts its input and weight to FP8 itself, each micro-batch) or ``fused`` (Transformer
    Engine: norms and activations write FP8 directly, weights are cast once per step); see
    :func:`cost_models.train.memory_ops.fp8_cast_bytes`."""

    attention_kernel: AttentionKernel = "flash"
    dropout: bool = False
    # Switch Transformer (Fedus et al. 2021, arXiv 2101.03961, section 2.2) trains with
    # capacity factors 1.0-1.25; a dropless router's busiest rank sits in that range. We
    # take the midpoint of the evaluated 1.0-1.25 range, an estimate.
    moe_imbalance: float = 1.1
    # Estimate: CUDA context and cuBLAS/cuDNN workspaces (~0.5-1 GB) plus NCCL channel
    # buffers (~0.5-1 GB per process with several communicators); not a measurement.
    overhead_bytes: float = 2.0e9
    # Expert all-to-all hidden behind another micro-batch's compute (Megatron-Core 0.14
    # ``overlap_moe_expert_parallel_comm``; DeepSeek-V3's DualPipe, arXiv 2412.19437 3.2.1)
    ep_overlap: bool = False
    # TP all-gathers/reduce-scatters pipelined with the GEMMs that consume them (Megatron-Core
    # ``--tp-comm-overlap`` with Transformer Engine userbuffers; Wang et al. 2023, ASPLOS,
    # "Overlap communication with dependent computation via decomposition")
    tp_overlap: bool = False
    # Gradient buffer and reduction dtype: 4 = fp32 (Megatron-LM forces fp32 accumulation and
    # reduction for bf16; FSDP reduce_dtype fp32), 2 = bf16 (Megatron-Core
    # ``grad_reduce_in_fp32=False``, as NeMo/Megatron-Bridge performance recipes set it)
    grad_bytes: float = 4.0
    # Node-limited MoE routing: each token goes to at most this many nodes (0 = unlimited;
    # DeepSeek-V3 uses 4, arXiv 2412.19437 section 2.1.2)
    moe_max_nodes: int = 0
    elementwise: Elementwise = "fused"
    fp8_casts: Fp8Casts = "per_gemm"
    selective_recompute: SelectivePolicy = "attention"
    # FSDP/ZeRO-3 issues the next unit's (layer's) parameter all-gather while the current
    # unit computes (PyTorch FSDP ``forward_prefetch``/``backward_prefetch``, Zhao et al. 2023,
    # VLDB, "PyTorch FSDP", section 3.3.1; FSDP2 prefetches by default; DeepSpeed
    # ``stage3_prefetch_bucket_size``). False: every gather waits on the critical path.
    fsdp_prefetch: bool = True
    # Data-parallel gradient reduction bucketed and issued during the backward pass
    # (PyTorch DDP, Li et al. 2020, VLDB, "PyTorch Distributed", section 3.2.3; Megatron-Core
    # ``overlap_grad_reduce``). False: one reduction after the backward pass (Megatron-LM 2021
    # ``--DDP-impl local`` all-reduces the gradients after the last micro-batch).
    dp_overlap: bool = True
    # Separate gathers (and reduce-scatters) a ZeRO-3/FSDP unit issues per pass: 1 for FSDP's
    # flat parameter per wrapped layer; one per parameter tensor where parameters are
    # partitioned and fetched one by one (DeepSpeed ZeRO-3 as of 2021, Rajbhandari et al.
    # 2021, "ZeRO-Infinity", SC'21, section 6: parameters partitioned per tensor and
    # gathered by the module's pre-forward hook). Each collective pays its latency.
    zero3_collectives_per_layer: int = 1
    # ZeRO-3 hands each gather and reduce-scatter one tensor per rank (a list of views of
    # one buffer), and PyTorch copies every rank's shard out of (or into) NCCL's flat buffer
    # with its own kernel: DP-group-size copies per collective (DeepSpeed before PR #1188,
    # October 2021, which moved to ``_all_gather_base``: "the torch.distributed.all_gather
    # will do implicit memcpy at the end of each ncclAllgather"). False: one flat buffer.
    zero3_per_rank_copies: bool = False
    # ZeRO-3/FSDP keeps a 2-byte copy of each parameter shard beside the fp32 master in the
    # optimizer (DeepSpeed ZeRO-3's fp16/bf16 partition plus its fp32 partition). False: the
    # fp32 shard is the only copy and the cast to bf16 happens at the all-gather (PyTorch FSDP2
    # ``MixedPrecisionPolicy``: "the optimizer step uses the sharded parameter in the original
    # dtype"; FSDP1 frees its low-precision shard after each all-gather; MaxText's fp32
    # parameters are cast inside the layer).
    zero3_bf16_shard: bool = True
    # Calibrated efficiencies (cost_models/train/calibration.json) or the identity
    calibrated: bool = True

    def __post_init__(self) -> None:
        if self.attention_kernel not in ATTENTION_KERNELS:
            raise ValueError(
                f"attention_kernel: must be one of {', '.join(ATTENTION_KERNELS)}; "
                f"got {self.attention_kernel!r}"
            )
        if self.elementwise not in ELEMENTWISE:
            raise ValueError(
                f"elementwise: must be one of {', '.join(ELEMENTWISE)}; got {self.elementwise!r}"
            )
        if self.fp8_casts not in FP8_CASTS:
            raise ValueError(
                f"fp8_casts: must be one of {', '.join(FP8_CASTS)}; got {self.fp8_casts!r}"
            )
        if self.selective_recompute not in SELECTIVE_POLICIES:
            raise ValueError(
                f"selective_recompute: must be one of {', '.join(SELECTIVE_POLICIES)}; "
                f"got {self.selective_recompute!r}"
            )
        if not 1.0 <= self.moe_imbalance <= 4.0:
            raise ValueError(f"moe_imbalance: must lie in [1, 4], got {self.moe_imbalance}")
        if self.grad_bytes not in (2.0, 4.0):
            raise ValueError(f"grad_bytes: must be 2 (bf16) or 4 (fp32), got {self.grad_bytes}")
        if self.overhead_bytes < 0:
            raise ValueError(f"overhead_bytes: must be >= 0, got {self.overhead_bytes}")


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """Facts about the serving engine that change its cost (not tuning knobs).

    ``step_overhead_s``: host time per engine iteration (one prefill or one decode step) that
    the device waits for: scheduling, input preparation, sampling and output processing not
    overlapped with the forward pass (Vidur, Agrawal et al. 2024, MLSys, section 4 models
    these CPU overheads per iteration; vLLM 0.6 moved them off the critical path with
    multi-step scheduling). ``host_launch_s``: host time to issue one kernel when the engine
    does not replay CUDA graphs; a kernel shorter than that leaves the device idle, so each
    kernel costs at least this much (0 = kernels captured in CUDA graphs).
    ``overhead_bytes``: memory per device beyond weights, KV cache and activations (CUDA
    context, workspaces, communication buffers). ``prefill_chunk_tokens``: the scheduler's
    token budget per iteration under chunked prefill (vLLM ``max_num_batched_tokens``, SGLang
    ``chunked_prefill_size``, Agrawal et al. 2024, "Sarathi-Serve", OSDI): a prefill of more
    tokens runs as that many-token chunks, one engine iteration each; 0 = the whole prefill in
    one pass."""

    step_overhead_s: float = 0.0
    host_launch_s: float = 0.0
    prefill_chunk_tokens: int = 0
    # CUDA context (~0.5 GB), cuBLAS/NCCL workspaces and allocator slack. A round estimate:
    # FasterTransformer reports 15.55 GB for GPT-6.7B whose fp16 weights are 13.3 GB
    # (published_inference.csv row 10).
    overhead_bytes: float = 1.5e9

    def __post_init__(self) -> None:
        for key, (low, high) in SERVE_FACTS.numbers.items():
            value = getattr(self, key)
            if not low <= value <= high:
                raise ValueError(f"{key}: must lie in [{low:g}, {high:g}], got {value}")


@dataclass(frozen=True, kw_only=True)
class FactSchema:
    """The keys a stack file or ``--framework`` may set for one options class: ``choices``
    (allowed values) and ``numbers`` (closed ranges); ``ints`` are the integer numbers."""

    choices: Mapping[str, tuple[Any, ...]]
    numbers: Mapping[str, tuple[float, float]]
    ints: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.choices, *self.numbers)

    def parse(self, facts: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        """``facts`` checked and in their field types; errors name ``where.key``."""
        return {key: self._value(key, raw, where=where) for key, raw in facts.items()}

    def _value(self, key: str, raw: Any, *, where: str) -> Any:
        if key not in self.keys:
            raise ValueError(f"{where}.{key}: unknown key; allowed: {', '.join(self.keys)}")
        value = _parse_text(raw, boolean=key in self.choices and _is_bool(self.choices[key]),
                            number=key in self.numbers or key == "grad_bytes")  # fmt: skip
        if key in self.choices:
            allowed = self.choices[key]
            if isinstance(value, bool) != _is_bool(allowed) or value not in allowed:
                shown = ", ".join(str(a).lower() for a in allowed)
                raise ValueError(f"{where}.{key}: must be one of {shown}; got {raw!r}")
            return float(value) if key == "grad_bytes" else value
        low, high = self.numbers[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}.{key}: must be a number; got {raw!r}")
        if not low <= value <= high:
            lo, hi = (f"{int(v):,}" if key in self.ints else f"{v:g}" for v in (low, high))
            raise ValueError(f"{where}.{key}: must lie in [{lo}, {hi}]; got {raw!r}")
        if key in self.ints and not float(value).is_integer():
            raise ValueError(f"{where}.{key}: must be a whole number; got {raw!r}")
        return int(value) if key in self.ints else float(value)


def _is_bool(allowed: tuple[Any, ...]) -> bool:
    return isinstance(allowed[0], bool)


def _parse_text(value: Any, *, boolean: bool, number: bool) -> Any:
    """Values given as text (``--framework tp_overlap=true``) in the field's own type."""
    if not isinstance(value, str):
        return value
    low = value.strip().lower()
    if boolean:
        return {"true": True, "false": False, "1": True, "0": False}.get(low, value)
    if number:
        try:
            parsed = float(low)
        except ValueError:
            return value
        return int(parsed) if parsed.is_integer() else parsed
    return low


TRAIN_FACTS = FactSchema(
    choices={
        "attention_kernel": ATTENTION_KERNELS,
        "elementwise": ELEMENTWISE,
        "fp8_casts": FP8_CASTS,
        "selective_recompute": SELECTIVE_POLICIES,
        "tp_overlap": (False, True),
        "ep_overlap": (False, True),
        "fsdp_prefetch": (False, True),
        "zero3_bf16_shard": (False, True),
        "zero3_per_rank_copies": (False, True),
        "dp_overlap": (False, True),
        "dropout": (False, True),
        "grad_bytes": (2, 4),
    },
    numbers={
        "moe_imbalance": (1.0, 4.0),
        "moe_max_nodes": (0.0, 1e6),
        "overhead_bytes": (0.0, 1e12),
        "zero3_collectives_per_layer": (1.0, 64.0),
    },
    ints=("moe_max_nodes", "zero3_collectives_per_layer"),
)
SERVE_FACTS = FactSchema(
    choices={},
    numbers={
        # plausible: 0 (fully overlapped) to 20 ms (a Python scheduler on a large batch)
        "step_overhead_s": (0.0, 0.02),
        # plausible: 0 (CUDA graphs) to 50 us (Python eager dispatch per op)
        "host_launch_s": (0.0, 5e-5),
        "overhead_bytes": (0.0, 1e12),
        # 0 (no chunking) or a token budget; engines default to 512-16,384
        "prefill_chunk_tokens": (0.0, 16777216.0),
    },
    ints=("prefill_chunk_tokens",),
)
FRAMEWORK_KEYS: tuple[str, ...] = TRAIN_FACTS.keys


def train_options(framework: Mapping[str, Any], *, where: str = "framework") -> TrainOptions:
    """:class:`TrainOptions` from ``framework``; ``where`` prefixes the key in errors."""
    return TrainOptions(**TRAIN_FACTS.parse(framework, where=where))


def parse_pairs(
    pairs: list[str], *, flag: str = "--framework", keys: tuple[str, ...] = FRAMEWORK_KEYS
) -> dict[str, str]:
    """``["key=value", ...]`` as a mapping; a pair without ``=`` is an error naming ``flag``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag}: expected KEY=VALUE, got {pair!r}; keys: {', '.join(keys)}")
        out[key.strip()] = value.strip()
    return out
