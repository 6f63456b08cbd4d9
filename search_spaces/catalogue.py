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
from search_spaces.hf_cache import find_cached_config, hub_cache_dir, looks_like_hub_id
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


def _from_hub_cache(repo_id: str) -> Architecture:
    found = find_cached_config(repo_id)
    if found is None:
        raise SpecError(
            f"{repo_id}: no such file or folder, and no config.json for hub id {repo_id} in "
            f"the local Hugging Face cache ({hub_cache_dir()}); download it first "
            f"(huggingface-cli download {repo_id} config.json) or give its path"
        )
    return architecture_from_hf_config(
        found,
        name=repo_id.split("/")[-1],
        source=f"Hugging Face {repo_id} config.json (local cache: {found})",
    )


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((*_YAML_SUFFIXES, ".json")) or "/" in spec or "\\" in spec


def load_model(spec: str | Path) -> Architecture:
    """Resolve ``spec`` to an :class:`Architecture`.

    Dispatch: a folder is read as a Hugging Face model folder (its ``config.json``); an
    existing file (or anything that looks like a path) as a Hugging Face config when it ends
    in ``.json`` and as a model YAML otherwise; a catalogue name as that reference model; an
    ``org/name`` hub id as its ``config.json`` in the local Hugging Face cache
    (:mod:`search_spaces.hf_cache`, no network). Unknown names raise :class:`SpecError`
    listing the known ones.
    """
    text = str(spec)
    if not text.strip():
        raise SpecError("model: empty name; give a reference model (nas models list), a model .yaml or a config.json")  # fmt: skip
    path = Path(text)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise SpecError(f"{text}: folder has no config.json (a Hugging Face model folder)")
        return architecture_from_hf_config(config)
    if not path.exists() and looks_like_hub_id(text):
        return _from_hub_cache(text)
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
            "(or give a model .yaml, a Hugging Face config.json or model folder, or a hub "
            "id in the local Hugging Face cache)"
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
