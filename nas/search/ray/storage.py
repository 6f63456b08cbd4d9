"""Where a Ray run keeps Tune's state and its files in ``search.ray.storage``.

A plain path is made absolute (Tune and pyarrow want that); a URI (``s3://``, ``gs://``,
``file://``) is kept as given. A run named ``NAME`` lives in ``<storage>/NAME``: Tune's state
in ``<storage>/NAME/tune``, the run's files (a submitted job pushes them) beside it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_location", "storage_root"]


def storage_root(uri: str) -> str:
    """``uri`` as Tune and pyarrow want it: a URI as given, a plain path made absolute."""
    return uri.rstrip("/") if "://" in uri else str(Path(uri).expanduser().resolve())


def run_location(uri: str, run_name: str) -> str:
    """Where the run ``run_name`` lives in storage ``uri``."""
    return f"{storage_root(uri)}/{run_name}"
