"""Import a Hugging Face ``config.json`` (a local file or its parsed mapping) as an Architecture.

Field names follow the ``transformers`` configuration classes of each family (LlamaConfig,
MistralConfig, MixtralConfig, Qwen2Config, Qwen3Config, Qwen3MoeConfig, DeepseekV2Config,
DeepseekV3Config, GPT2Config). No network access: only what is in the file is used.

Simplifications, all small against the parameter count and stated here once:

* Qwen3's per-head QK RMSNorm weights (``2 * head_dim`` per layer) are not counted.
* MLA models have no GQA head count of their own; ``num_kv_heads`` is set to ``num_heads``
  and ``head_dim`` to ``v_head_dim`` (the MLA dimensions drive every count).

Biases, as each family's ``transformers`` modelling code places them (counted in parameters,
and so in weight, gradient and optimizer memory and gradient traffic; a bias add's FLOPs
are not counted, as for ``bias``): Qwen2 always has biases on the q, k and v projections and
none on the output projection (``attention_bias: qkv``, whatever the config says); Llama,
Qwen3 and Qwen3-MoE read ``attention_bias`` (q, k, v and output: ``qkvo``); Llama's
``mlp_bias`` together with it sets ``bias`` (every linear layer); Mistral and Mixtral have no
biases. Refused: Llama's ``mlp_bias`` without ``attention_bias``, and ``attention_bias`` on
DeepSeek's MLA projections.

Refused in one line, naming the field, because counts and costs would silently be wrong:
an active sliding attention window (``sliding_window`` where the family uses it), a
``quantization_config`` (weights stored in another dtype than the compute dtype), and
multi-token-prediction layers (``num_nextn_predict_layers`` > 0) outside the DeepSeek family,
where they are read as ``mtp_layers``. Each message says how to import the model without the
feature.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from search_spaces.architecture import Architecture, architecture_from_dict
from search_spaces.errors import SpecError

__all__ = ["architecture_from_hf_config", "read_hf_config", "supported_model_types"]


Config = Mapping[str, Any]

# hidden_act of gated families -> our ffn_activation (SiLU-gated = SwiGLU, GELU-gated = GeGLU).
_GATED_ACT = {
    "silu": "swiglu",
    "swish": "swiglu",
    "gelu": "geglu",
    "gelu_new": "geglu",
    "gelu_pytorch_tanh": "geglu",
}
_PLAIN_ACT = {"gelu": "gelu", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}


def _get(cfg: Config, key: str, default: Any = None) -> Any:
    value = cfg.get(key)
    if value is None:  # absent or null: the family's default, if it has one
        value = default
    if value is None:
        raise SpecError(f"{key}: required field is missing from the config")
    return value


def _int(cfg: Config, key: str, default: int | None = None) -> int:
    value = _get(cfg, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{key}: must be an integer, got {value!r}")
    return value


def _activation(cfg: Config, key: str, table: Mapping[str, str], default: str) -> str:
    act = cfg.get(key, default)
    if not isinstance(act, str) or act not in table:
        raise SpecError(f"{key}: unsupported activation {act!r}; supported: {', '.join(table)}")
    return table[act]


def _dense_fields(cfg: Config, name: str) -> dict[str, Any]:
    """Fields shared by the Llama-style families (RMSNorm, RoPE, gated FFN)."""
    heads = _int(cfg, "num_attention_heads")
    d_model = _int(cfg, "hidden_size")
    out: dict[str, Any] = {
        "name": name,
        "num_layers": _int(cfg, "num_hidden_layers"),
        "d_model": d_model,
        "num_heads": heads,
        "num_kv_heads": _int(cfg, "num_key_value_heads", heads),
        "d_ff": _int(cfg, "intermediate_size"),
        "vocab_size": _int(cfg, "vocab_size"),
        "ffn_activation": _activation(cfg, "hidden_act", _GATED_ACT, "silu"),
        "tie_embeddings": _flag(cfg, "tie_word_embeddings", False),
        "norm": "rmsnorm",
    }
    head_dim = cfg.get("head_dim")
    out["head_dim"] = head_dim if head_dim is not None else 0
    return out


def _llama(cfg: Config, name: str) -> dict[str, Any]:
    return _dense_fields(cfg, name)


def _mixtral(cfg: Config, name: str) -> dict[str, Any]:
    out = _dense_fields(cfg, name)
    out["moe"] = {
        "num_experts": _int(cfg, "num_local_experts"),
        "top_k": _int(cfg, "num_experts_per_tok"),
        "d_expert": out["d_ff"],
    }
    return out


def _qwen3_moe(cfg: Config, name: str) -> dict[str, Any]:
    out = _dense_fields(cfg, name)
    step = _int(cfg, "decoder_sparse_step", 1)
    raw_dense = cfg.get("mlp_only_layers") or []
    if not isinstance(raw_dense, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in raw_dense
    ):
        raise SpecError(f"mlp_only_layers: must be a list of layer indices, got {raw_dense!r}")
    dense_only = list(raw_dense)
    # Qwen3MoE: layer i is MoE when (i + 1) % step == 0 and i is not in mlp_only_layers. We
    # represent leading dense layers only, so mlp_only_layers must be 0..k-1 (with step 1).
    if dense_only and (dense_only != list(range(len(dense_only))) or step != 1):
        raise SpecError(
            "mlp_only_layers: only a leading run 0..k-1 with decoder_sparse_step 1 is "
            f"supported, got {dense_only} with step {step}"
        )
    out["moe"] = {
        "num_experts": _int(cfg, "num_experts"),
        "top_k": _int(cfg, "num_experts_per_tok"),
        "d_expert": _int(cfg, "moe_intermediate_size"),
        "first_dense_layers": len(dense_only),
        "layer_period": step,
    }
    return out


def _deepseek(cfg: Config, name: str) -> dict[str, Any]:
    out = _dense_fields(cfg, name)
    out["num_kv_heads"] = out["num_heads"]
    v_head_dim = _int(cfg, "v_head_dim")
    out["head_dim"] = v_head_dim
    q_lora = cfg.get("q_lora_rank")  # null in DeepSeek-V2-Lite: queries come from d_model
    out["mla"] = {
        "kv_lora_rank": _int(cfg, "kv_lora_rank"),
        "q_lora_rank": 0 if q_lora is None else _int(cfg, "q_lora_rank"),
        "qk_rope_head_dim": _int(cfg, "qk_rope_head_dim"),
        "qk_nope_head_dim": _int(cfg, "qk_nope_head_dim"),
        "v_head_dim": v_head_dim,
    }
    # DeepSeek-V3's multi-token prediction modules (modeling_deepseek.py leaves them out of the
    # model; the checkpoint holds them as layers num_hidden_layers and on)
    out["mtp_layers"] = _int(cfg, "num_nextn_predict_layers", 0)
    if cfg.get("n_routed_experts") is not None:
        # DeepseekV2/V3: layer i is MoE when i >= first_k_dense_replace and
        # i % moe_layer_freq == 0 (modeling_deepseek.py); with freq 1 that is our layout.
        out["moe"] = {
            "num_experts": _int(cfg, "n_routed_experts"),
            "top_k": _int(cfg, "num_experts_per_tok"),
            "d_expert": _int(cfg, "moe_intermediate_size"),
            "num_shared_experts": _int(cfg, "n_shared_experts", 0),
            "first_dense_layers": _int(cfg, "first_k_dense_replace", 0),
            "layer_period": _int(cfg, "moe_layer_freq", 1),
        }
    return out


def _gpt2(cfg: Config, name: str) -> dict[str, Any]:
    d_model = _int(cfg, "n_embd")
    heads = _int(cfg, "n_head")
    inner = cfg.get("n_inner")
    return {
        "name": name,
        "num_layers": _int(cfg, "n_layer"),
        "d_model": d_model,
        "num_heads": heads,
        "num_kv_heads": heads,
        "d_ff": 4 * d_model if inner is None else _int(cfg, "n_inner"),  # GPT2Config default
        "vocab_size": _int(cfg, "vocab_size"),
        "ffn_activation": _activation(cfg, "activation_function", _PLAIN_ACT, "gelu_new"),
        "tie_embeddings": _flag(cfg, "tie_word_embeddings", True),
        "norm": "layernorm",
        "bias": True,
        "learned_positions": _int(cfg, "n_positions"),
    }


# families whose multi-token prediction modules (num_nextn_predict_layers) are read as
# Architecture.mtp_layers; elsewhere the field is refused
_MTP_FAMILIES = ("deepseek_v2", "deepseek_v3")
_FAMILIES: dict[str, Callable[[Config, str], dict[str, Any]]] = {
    "llama": _llama,
    "mistral": _llama,
    "mixtral": _mixtral,
    "qwen2": _llama,
    "qwen3": _llama,
    "qwen3_moe": _qwen3_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "gpt2": _gpt2,
}


def _flag(cfg: Config, key: str, default: bool = False) -> bool:
    """A JSON true/false (absent or null: ``default``); "false" as text is an error."""
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(f"{key}: must be true or false, got {value!r}")
    return value


def _bias_fields(cfg: Config, model_type: str) -> dict[str, Any]:
    """``bias`` and ``attention_bias`` as the family's modelling code applies them (see the
    module docstring); {} for families whose importer sets them itself (GPT-2)."""
    if model_type == "qwen2":  # Qwen2Attention: q/k/v bias=True, o_proj bias=False
        return {"bias": False, "attention_bias": "qkv"}
    if model_type in ("mistral", "mixtral"):  # bias=False on every projection
        return {"bias": False, "attention_bias": "none"}
    attention = _flag(cfg, "attention_bias")
    if model_type.startswith("deepseek"):
        if attention:
            raise SpecError(
                "attention_bias: true: biases on the MLA projections are not modelled; set it "
                "to false in a copy of the config to import the model without them"
            )
        return {"bias": False, "attention_bias": "none"}
    if model_type != "llama":  # Qwen3, Qwen3-MoE: attention_bias on q, k, v, o; MLP unbiased
        return {"bias": False, "attention_bias": "qkvo" if attention else "none"}
    mlp = _flag(cfg, "mlp_bias")
    if mlp and not attention:
        raise SpecError(
            "mlp_bias: true without attention_bias: biases on the MLP alone are not modelled; "
            "set it to false in a copy of the config to import the model without them"
        )
    if mlp:
        return {"bias": True, "attention_bias": "none"}  # every linear layer
    return {"bias": False, "attention_bias": "qkvo" if attention else "none"}


def _sliding_window_active(cfg: Config, model_type: str) -> bool:
    window = cfg.get("sliding_window")
    if window is None or window is False:
        return False
    # Qwen2/Qwen3 configs carry a window that is off unless use_sliding_window is true
    # (transformers Qwen2Config); Mistral/Mixtral apply it whenever it is set.
    if model_type.startswith("qwen"):
        return _flag(cfg, "use_sliding_window", False)
    return True


def _refuse_unmodelled(cfg: Config, model_type: str) -> None:
    """One line for a config feature the counts and cost models do not represent."""
    if _sliding_window_active(cfg, model_type):
        raise SpecError(
            f"sliding_window: {cfg['sliding_window']!r}: sliding-window attention is not "
            "modelled (attention FLOPs and KV cache assume full causal attention); set it to "
            "null in a copy of the config to import the model as full attention"
        )
    if cfg.get("quantization_config") is not None:
        qc = cfg["quantization_config"]
        method = qc.get("quant_method", "?") if isinstance(qc, dict) else qc
        raise SpecError(
            f"quantization_config: quant_method {method!r}: stored weight dtypes are not read "
            "from configs; remove the field and give the dtype to the command "
            "(nas estimate --weight-dtype fp8)"
        )
    mtp = cfg.get("num_nextn_predict_layers")
    if model_type in _MTP_FAMILIES:
        return  # read as mtp_layers
    if mtp is not None and (isinstance(mtp, bool) or not isinstance(mtp, int) or mtp < 0):
        raise SpecError(f"num_nextn_predict_layers: must be a non-negative integer, got {mtp!r}")
    if isinstance(mtp, int) and mtp > 0:
        raise SpecError(
            f"num_nextn_predict_layers: {mtp}: multi-token-prediction layers are not counted "
            "or costed; set it to 0 in a copy of the config to import the main model only"
        )


def supported_model_types() -> list[str]:
    return sorted(_FAMILIES)


def read_hf_config(path: str | Path) -> dict[str, Any]:
    """Read a local ``config.json``; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: file not found")
    try:
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not an error
        data = json.loads(p.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise SpecError(f"{p}: nested too deeply to be a config.json") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}: malformed JSON (line {exc.lineno})") from None
    except ValueError:  # Python's cap on integer digits (sys.get_int_max_str_digits)
        limit = sys.get_int_max_str_digits()
        raise SpecError(f"{p}: holds a number of more than {limit} digits; not a config value") from None  # fmt: skip
    if not isinstance(data, dict):
        raise SpecError(f"{p}: must hold a JSON object, got {type(data).__name__}")
    return data


def _default_name(cfg: Config, path: Path | None) -> str:
    given = cfg.get("_name_or_path")
    if isinstance(given, str) and given.strip("/"):
        return given.rstrip("/").split("/")[-1]
    if path is not None:
        return path.parent.name if path.stem == "config" and path.parent.name else path.stem
    return str(cfg.get("model_type", "hf-model"))


def architecture_from_hf_config(
    config: Config | str | Path, *, name: str | None = None, source: str | None = None
) -> Architecture:
    """Build an :class:`Architecture` from a Hugging Face config (a mapping or a local file).

    ``name`` defaults to the config's ``_name_or_path`` or the folder holding the file.
    Unsupported ``model_type`` raises :class:`SpecError` listing the supported ones.
    """
    path = None if isinstance(config, Mapping) else Path(config)
    cfg: Config = config if isinstance(config, Mapping) else read_hf_config(config)
    model_type = cfg.get("model_type")
    family = _FAMILIES.get(model_type) if isinstance(model_type, str) else None
    where = f"{path.name}: " if path is not None else ""
    if family is None:
        raise SpecError(
            f"{where}model_type: unsupported {model_type!r}; "
            f"supported: {', '.join(supported_model_types())}"
        )
    try:
        _refuse_unmodelled(cfg, str(model_type))
        fields = family(cfg, name or _default_name(cfg, path))
        if model_type != "gpt2":
            fields.update(_bias_fields(cfg, str(model_type)))
        fields["source"] = source or (
            f"Hugging Face config.json ({path})" if path else "Hugging Face config"
        )
        return architecture_from_dict(fields)
    except SpecError as exc:
        raise SpecError(f"{where}{exc}") from None
