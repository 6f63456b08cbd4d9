"""Run directories through storage, the Ray way: a shared path or a pyarrow filesystem URI.

``--storage URI`` (``search.ray.storage``) is Tune's ``RunConfig(storage_path=...)``: a path
that every node of the cluster sees (NFS, a mounted bucket) or any URI pyarrow opens
(``s3://bucket/prefix``, ``gs://...``, ``file:///...``). A run named ``NAME`` keeps Tune's
state under ``URI/NAME/tune``; a submitted job also pushes its run directory (without
``dashboard.html`` and ``tune/``) to ``URI/NAME/``, where ``nas jobs fetch`` reads it.
"""

from __future__ import annotations

import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from nas.jobs.archive import NOT_PACKED, land_run
from nas.jobs.client import JobsError
from nas.search.ray.storage import run_location, storage_root

__all__ = ["check_writable", "pull_run", "push_run", "run_location", "storage_root"]


def _open(uri: str) -> tuple[Any, str]:
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(storage_root(uri))  # type: ignore[no-any-return]
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise JobsError(f"--storage {uri}: cannot open: {_line(exc)}") from None


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_writable(uri: str) -> None:
    """Write and delete a probe file under ``uri``; one-line :class:`JobsError` if it fails."""
    import pyarrow as pa

    fs, base = _open(uri)
    probe = f"{base}/.nas-probe-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(base, recursive=True)
        with fs.open_output_stream(probe) as stream:
            stream.write(b"ok")
        fs.delete_file(probe)
    except (pa.ArrowException, OSError) as exc:
        raise JobsError(f"--storage {uri}: cannot write there: {_line(exc)}") from None


def push_run(run_dir: Path, uri: str) -> str:
    """Copy ``run_dir`` (its files, not ``dashboard.html``/``tune``) to ``URI/<name>``."""
    import pyarrow as pa

    if not (run_dir / "experiment.yaml").is_file():
        raise JobsError(f"{run_dir}: not a run directory (no experiment.yaml)")
    fs, base = _open(run_location(uri, run_dir.name))
    try:
        for path in sorted(run_dir.rglob("*")):
            rel = path.relative_to(run_dir)
            if rel.parts[0] in NOT_PACKED or not path.is_file():
                continue
            target = f"{base}/{rel.as_posix()}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(target) as stream:
                stream.write(path.read_bytes())
    except (pa.ArrowException, OSError) as exc:
        raise JobsError(f"--storage {uri}: cannot write the run: {_line(exc)}") from None
    return run_location(uri, run_dir.name)


def pull_run(uri: str, run_name: str, out: Path) -> Path:
    """Copy the run ``run_name`` from storage into ``out`` (all or nothing)."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    where = run_location(uri, run_name)
    fs, base = _open(where)

    def fill(tmp: Path) -> None:
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
        except FileNotFoundError:
            infos = []  # said below: no run there
        except (pa.ArrowException, OSError) as exc:
            raise JobsError(f"--storage {where}: cannot read: {_line(exc)}") from None
        files = [i for i in infos if i.type == pafs.FileType.File]
        rels = {i.path: PurePosixPath(i.path).relative_to(base) for i in files}
        if PurePosixPath("experiment.yaml") not in rels.values():
            raise JobsError(f"--storage {where}: no run there (no experiment.yaml)")
        for info in files:
            rel = rels[info.path]
            if rel.parts[0] in NOT_PACKED:
                continue
            target = tmp.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as stream:
                target.write_bytes(stream.read())

    return land_run(out, fill)
