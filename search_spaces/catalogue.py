"""The catalogue of reference models and the one entry point that resolves a model spec.

A *spec* is what a user types where a model is expected (``nas models show``, ``nas
estimate``): a catalogue name (``llama3-8b``), a model YAML file, or a Hugging Face
``config.json``. Reference models are data files in ``search_spaces/models/``; adding one
needs no code change.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

from search_spaces.architecture import Architecture, load_architecture
from search_spaces.counts import model_counts
from search_spaces.errors import SpecError
from search_spaces.hf_import import architecture_from_hf_config

__all__ = ["MODELS_DIR", "list_models", "load_model", "model_summary"]


MODELS_DIR = Path(__file__).resolve().parent / "models"
_YAML_SUFFIXES = (".yaml", ".yml")


def _catalogue_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.yaml"))}


def list_models() -> list[str]:
    """Names of the reference models, sorted."""
    return sorted(_catalogue_files())


@cache
def _load_reference(name: str) -> Architecture:
    path = _catalogue_files()[name]
    arch = load_architecture(path)
    if arch.name != name:
        raise SpecError(f"{path.name}: name: must match the file name {name!r}, got {arch.name!r}")
    return arch


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((*_YAML_SUFFIXES, ".json")) or "/" in spec or "\\" in spec


def load_model(spec: str | Path) -> Architecture:
    """Resolve ``spec`` to an :class:`Architecture`.

    Dispatch: an existing file (or anything that looks like a path) is read as a Hugging Face
    config when it ends in ``.json`` and as a model YAML otherwise; any other string is looked
    up in the catalogue. Unknown names raise :class:`SpecError` listing the known ones.
    """
    text = str(spec)
    path = Path(text)
    if isinstance(spec, Path) or path.is_file() or _looks_like_path(text):
        if not path.is_file():
            raise SpecError(f"{text}: file not found")
        if path.suffix == ".json":
            return architecture_from_hf_config(path)
        return load_architecture(path)
    known = list_models()
    if text not in known:
        raise SpecError(
            f"model: unknown name {text!r}; known: {', '.join(known)} "
            "(or give a model .yaml or a Hugging Face config.json)"
        )
    return _load_reference(text)


def model_summary(
    arch: Architecture, *, seq_len: int = 4096, dtype: str = "bf16"
) -> dict[str, Any]:
    """Derived counts then architecture fields, as one flat-ish mapping (``nas models show``).

    ``flops_per_token`` is the forward pass at ``seq_len`` with causal attention;
    ``kv_cache_bytes_per_token`` is for ``dtype`` (see :mod:`search_spaces.counts`).
    """
    counts: dict[str, Any] = dataclasses.asdict(model_counts(arch, seq_len=seq_len, dtype=dtype))
    for key, value in counts.items():  # counts are exact integers in float64 (< 2**53)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            counts[key] = int(value)
    counts["kv_cache_dtype"] = dtype
    counts["type"] = "moe" if arch.is_moe else "dense"
    return {**counts, **arch.to_dict()}
