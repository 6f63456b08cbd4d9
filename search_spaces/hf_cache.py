"""Find a model's ``config.json`` in the local Hugging Face cache by hub id (``org/name``),
without network access.

With ``huggingface_hub`` installed (optional: ``pip install huggingface_hub``) its
``try_to_load_from_cache`` answers first; otherwise (or when it finds nothing) the cache
layout it documents is read directly: ``<cache>/models--<org>--<name>/snapshots/<revision>/config.json``, the revision
named by ``refs/main`` (else the newest snapshot). The cache folder is ``$HF_HUB_CACHE``, else
``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``
(https://huggingface.co/docs/huggingface_hub/guides/manage-cache).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["find_cached_config", "hub_cache_dir", "looks_like_hub_id"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(text: str) -> bool:
    """``org/name`` with no file suffix (``meta-llama/Llama-3.1-8B``)."""
    return bool(_HUB_ID.match(text)) and not text.endswith((".json", ".yaml", ".yml"))


def hub_cache_dir() -> Path:
    """The local Hugging Face hub cache folder (see the module doc)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def find_cached_config(repo_id: str) -> Path | None:
    """The cached ``config.json`` of ``repo_id``, or ``None`` when it was never downloaded."""
    cache = hub_cache_dir()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return _from_layout(cache, repo_id)
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    # it follows refs/main only; a cache filled by revision has snapshots without it
    return Path(found) if isinstance(found, str) else _from_layout(cache, repo_id)


def _from_layout(cache: Path, repo_id: str) -> Path | None:
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    ref = folder / "refs" / "main"
    if ref.is_file():
        pinned = folder / "snapshots" / ref.read_text().strip() / "config.json"
        if pinned.is_file():
            return pinned
    snapshots = sorted(
        (folder / "snapshots").glob("*/config.json"), key=lambda p: p.stat().st_mtime
    )
    return snapshots[-1] if snapshots else None
