"""Submitting an experiment to a Ray cluster as a job.

* The job's working directory is a copy of the project without virtual environments, run
  directories, ``.git`` and caches, plus the resolved experiment as ``.nas-job/<name>.yaml``.
* The job id is chosen here (``nas-<experiment>-<8 hex>``) and names the run directory, so
  the run is ``URI/<job id>`` in ``--storage`` and ``nas jobs fetch`` finds it from the id.
* Entrypoint: the preflight (``nas/jobs/preflight.py``, standard library and ``ray`` only,
  so it runs where ``hwnas``'s dependencies are missing), then ``python -m nas run ...
  --backend ray --address auto``, then the run goes back: ``nas jobs push`` to the storage,
  or ``nas jobs pack`` into the log when there is none.
* The environment: ``pip`` (from ``--pip`` and ``--requirements``) or ``image_uri``
  (``--image``) in the job's ``runtime_env``.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.experiment import dump_experiment, load_experiment
from nas.jobs.client import JobsError

__all__ = [
    "EXCLUDES",
    "JOB_DIR",
    "Shipment",
    "entrypoint",
    "read_requirements",
    "submit_experiment",
]

JOB_DIR = ".nas-job"
# Never shipped: environments, results, VCS and caches (Ray's working_dir limit is 500 MiB).
EXCLUDES = (
    ".venv*",
    "venv",
    ".git",
    "runs",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "*.egg-info",
    "test-artifacts",
    "node_modules",
    JOB_DIR,
)

_RAY_UPLOAD_LOGGERS = (
    "ray",
    "ray.dashboard.modules.dashboard_sdk",
    "ray._private.runtime_env.packaging",
)


@dataclass(frozen=True, kw_only=True)
class Shipment:
    """What goes with a job besides the code: its environment and where results go."""

    pip: tuple[str, ...] = ()  # pip requirements installed for the job (runtime_env pip)
    image: str | None = None  # container image the job runs in (runtime_env image_uri)
    storage: str | None = None  # run storage URI; None: the run comes back through the log

    def __post_init__(self) -> None:
        if self.image is not None and self.pip:
            raise JobsError("--image: the image carries the environment; drop --pip/--requirements")

    def runtime_env(self, working_dir: Path) -> dict[str, Any]:
        """Ray's ``runtime_env`` of the job."""
        env: dict[str, Any] = {"working_dir": str(working_dir)}
        if self.pip:
            env["pip"] = list(self.pip)
        if self.image is not None:
            env["image_uri"] = self.image
        return env


def read_requirements(path: Path) -> tuple[str, ...]:
    """The requirement lines of a pip requirements file (comments and blanks dropped)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise JobsError(f"--requirements {path}: cannot read it: {exc.strerror}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    reqs = tuple(line for line in lines if line)
    if not reqs:
        raise JobsError(f"--requirements {path}: no requirements in it")
    return reqs


def _stage(project: Path, experiment_path: Path, trials: int | None) -> tuple[Path, str, str]:
    """A temporary copy of the project plus the resolved experiment; (dir, its path, name)."""
    experiment = load_experiment(experiment_path)
    if trials is not None:
        from nas.runs import with_overrides

        experiment = with_overrides(experiment, trials=trials)
    stage = Path(tempfile.mkdtemp(prefix="nas-job-"))
    shutil.copytree(project, stage / "project", ignore=shutil.ignore_patterns(*EXCLUDES))
    rel = f"{JOB_DIR}/{experiment.name}.yaml"
    (stage / "project" / JOB_DIR).mkdir()
    (stage / "project" / rel).write_text(dump_experiment(experiment))
    return stage, rel, experiment.name


def entrypoint(experiment_rel: str, *, job_id: str, storage: str | None = None) -> str:
    """The job's shell command (see the module docstring)."""
    import ray

    exp, out = shlex.quote(experiment_rel), shlex.quote(f"{JOB_DIR}/{job_id}")
    store = f" --storage {shlex.quote(storage)}" if storage else ""
    back = f"python -m nas jobs push {out}{store}" if storage else f"python -m nas jobs pack {out}"
    return (
        f"python nas/jobs/preflight.py --client-ray {ray.__version__}{store}"
        f" && python -m nas run {exp} --backend ray --address auto --out {out} --quiet{store}"
        f" && {back}"
    )


def submit_experiment(
    client: Any,
    experiment_path: Path,
    *,
    project: Path,
    trials: int | None = None,
    shipment: Shipment | None = None,
) -> str:
    """Submit the experiment as a job; returns the job id (the run's name)."""
    if not (project / "nas" / "__init__.py").is_file():
        raise JobsError(f"--project {project}: not the project root (no nas/__init__.py)")
    shipment = shipment or Shipment()
    stage, rel, name = _stage(project, experiment_path, trials)
    job_id = f"nas-{name}-{uuid.uuid4().hex[:8]}"
    # Ray's upload notes (INFO) would break the one-line errors on stderr
    quiet = [logging.getLogger(name) for name in _RAY_UPLOAD_LOGGERS]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.WARNING)
    try:
        submitted: str = client.submit_job(
            entrypoint=entrypoint(rel, job_id=job_id, storage=shipment.storage),
            submission_id=job_id,
            runtime_env=shipment.runtime_env(stage / "project"),
            metadata={
                "experiment": name,
                "submitted_by": "nas submit",
                "storage": shipment.storage or "",
            },
        )
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
        shutil.rmtree(stage, ignore_errors=True)
    return submitted
