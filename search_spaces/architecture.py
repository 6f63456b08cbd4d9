"""The architecture of a decoder-only transformer (dense or MoE), as a frozen, validated type.

The YAML form follows ``docs/design.md`` (section "Architecture"). Construction validates every
field and raises :class:`SpecError` with a one-line message naming the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from search_spaces.errors import SpecError

__all__ = [
    "Architecture",
    "MLAConfig",
    "MoEConfig",
    "architecture_from_dict",
    "load_architecture",
    "load_yaml_mapping",
]


FfnActivation = Literal["gelu", "relu", "swiglu", "geglu"]
NormKind = Literal["rmsnorm", "layernorm"]
# Biases on the attention projections alone: none, on the q, k and v outputs (Qwen2), or on
# q, k, v and the output projection (Llama-family ``attention_bias: true``).
AttentionBias = Literal["none", "qkv", "qkvo"]
GATED_ACTIVATIONS: frozenset[str] = frozenset({"swiglu", "geglu"})


# Every size of a model is a count below 2^24 (16.8M): the largest published ones are ~100x
# smaller (vocabularies of 262K, d_ff of 2^17, a million experts in PEER, He 2024, arXiv
# 2407.04153), so a larger value is a typo or a unit slip (an imported config.json included).
MAX_COUNT = 2**24


def _positive(where: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COUNT:
        raise SpecError(f"{where}{name}: must be a positive integer <= {MAX_COUNT:,}, got {value!r}")  # fmt: skip


def _non_negative(where: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise SpecError(f"{where}{name}: must be a non-negative integer <= {MAX_COUNT:,}, got {value!r}")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class MLAConfig:
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1)."""

    kv_lora_rank: int
    q_lora_rank: int  # 0 = queries projected directly from d_model (DeepSeek-V2-Lite)
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int

    def __post_init__(self) -> None:
        for name in ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            _positive("mla.", name, getattr(self, name))
        _non_negative("mla.", "q_lora_rank", self.q_lora_rank)


@dataclass(frozen=True, kw_only=True)
class MoEConfig:
    """Routed mixture of experts replacing the dense FFN in some layers."""

    num_experts: int
    top_k: int
    d_expert: int
    num_shared_experts: int = 0
    first_dense_layers: int = 0
    layer_period: int = 1

    def __post_init__(self) -> None:
        for name in ("num_experts", "top_k", "d_expert", "layer_period"):
            _positive("moe.", name, getattr(self, name))
        _non_negative("moe.", "num_shared_experts", self.num_shared_experts)
        _non_negative("moe.", "first_dense_layers", self.first_dense_layers)
        if self.top_k > self.num_experts:
            raise SpecError(
                f"moe.top_k: must be <= moe.num_experts ({self.num_experts}), got {self.top_k}"
            )


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """A decoder-only transformer. Sizes are counts (not bytes); see ``docs/design.md``."""

    name: str
    num_layers: int
    d_model: int
    num_heads: int
    num_kv_heads: int
    d_ff: int
    vocab_size: int
    head_dim: int = 0  # 0 = d_model // num_heads
    ffn_activation: FfnActivation = "swiglu"
    tie_embeddings: bool = False
    norm: NormKind = "rmsnorm"
    bias: bool = False  # biases on every linear layer and norm (GPT-2/GPT-3 style)
    attention_bias: AttentionBias = "none"  # biases on attention projections only (implied by bias)
    learned_positions: int = 0  # rows of a learned position table (GPT-2/3); 0 = RoPE
    # attention and MLP read the same normed input and add to one residual,
    # y = x + Attn(LN(x)) + MLP(LN(x)) (GPT-J; PaLM, arXiv 2204.02311, section 2): one norm
    # and, under tensor parallelism, one all-reduce per layer instead of two (stored
    # activations keep the serial block's count: the norm input it saves, ~6%, is kept)
    parallel_block: bool = False
    # multi-token prediction modules trained beside the model (DeepSeek-V3, arXiv 2412.19437,
    # section 2.2: each is one transformer block, a projection of two concatenated d_model
    # vectors to d_model and two RMSNorms, sharing the embedding and the output head). Training
    # runs them and their extra LM-head pass; plain decoding drops them. Not in the parameter
    # counts (DeepSeek-V3's 671B excludes its 14B MTP module).
    mtp_layers: int = 0
    mla: MLAConfig | None = None
    moe: MoEConfig | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"name: must be a non-empty string, got {self.name!r}")
        for name in ("num_layers", "d_model", "num_heads", "num_kv_heads", "d_ff", "vocab_size"):
            _positive("", name, getattr(self, name))
        _non_negative("", "head_dim", self.head_dim)
        _non_negative("", "learned_positions", self.learned_positions)
        _non_negative("", "mtp_layers", self.mtp_layers)
        if self.mtp_layers > self.num_layers:
            raise SpecError(
                f"mtp_layers: must be <= num_layers ({self.num_layers}), got {self.mtp_layers}"
            )
        if self.num_heads % self.num_kv_heads:
            raise SpecError(
                f"num_kv_heads: must divide num_heads ({self.num_heads}), got {self.num_kv_heads}"
            )
        if self.head_dim == 0:
            if self.d_model % self.num_heads:
                raise SpecError(
                    f"head_dim: d_model ({self.d_model}) is not divisible by num_heads "
                    f"({self.num_heads}); give head_dim explicitly"
                )
            object.__setattr__(self, "head_dim", self.d_model // self.num_heads)
        _check_literal("ffn_activation", self.ffn_activation, FfnActivation)
        _check_literal("norm", self.norm, NormKind)
        _check_literal("attention_bias", self.attention_bias, AttentionBias)
        if self.mla is not None and self.attention_bias != "none":
            raise SpecError(
                f"attention_bias: {self.attention_bias!r} is not modelled with mla "
                "(latent projections); allowed with mla: none"
            )
        for flag in ("tie_embeddings", "bias", "parallel_block"):
            if not isinstance(getattr(self, flag), bool):
                raise SpecError(f"{flag}: must be true or false, got {getattr(self, flag)!r}")
        if self.moe is not None and self.moe.first_dense_layers > self.num_layers:
            raise SpecError(
                f"moe.first_dense_layers: must be <= num_layers ({self.num_layers}), "
                f"got {self.moe.first_dense_layers}"
            )

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def gated_ffn(self) -> bool:
        return self.ffn_activation in GATED_ACTIVATIONS

    @property
    def num_moe_layers(self) -> int:
        if self.moe is None:
            return 0
        return (self.num_layers - self.moe.first_dense_layers) // self.moe.layer_period

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    @property
    def granularity(self) -> float:
        """Expert granularity G = d_ff / d_expert (Krajewski et al. 2024, arXiv 2402.07871)."""
        return 1.0 if self.moe is None else self.d_ff / self.moe.d_expert

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("mla", "moe"):
            if out[key] is None:
                del out[key]
        return out


def _check_literal(name: str, value: object, kind: Any) -> None:
    allowed = get_args(kind)
    if value not in allowed:
        raise SpecError(f"{name}: must be one of {', '.join(allowed)}; got {value!r}")


def _build(cls: type[Any], data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where or 'model'}: must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(f"{where}{unknown[0]}: unknown field; allowed: {', '.join(sorted(fields))}")
    required = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise SpecError(f"{where}{missing[0]}: required field is missing")
    return cls(**data)


def architecture_from_dict(data: Mapping[str, Any]) -> Architecture:
    """Build an :class:`Architecture` from its YAML mapping, rejecting unknown keys."""
    if not isinstance(data, Mapping):
        raise SpecError(f"model: must be a mapping, got {type(data).__name__}")
    values = dict(data)
    if values.get("mla") is not None:
        values["mla"] = _build(MLAConfig, values["mla"], "mla.")
    if values.get("moe") is not None:
        values["moe"] = _build(MoEConfig, values["moe"], "moe.")
    try:
        arch: Architecture = _build(Architecture, values, "")
    except TypeError as exc:  # a wrongly typed value slipped past the field checks
        raise SpecError(f"model: {exc}") from None
    return arch


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    if not path.is_file():
        raise SpecError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise SpecError(f"{path}: nested too deeply to be a model or space file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{path}: malformed YAML{line}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: must hold a mapping of fields, got {type(data).__name__}")
    return data


def load_architecture(path: str | Path) -> Architecture:
    """Load a model YAML file; errors are prefixed with the file name."""
    p = Path(path)
    data = load_yaml_mapping(p)
    try:
        return architecture_from_dict(data)
    except SpecError as exc:
        raise SpecError(f"{p.name}: {exc}") from None
