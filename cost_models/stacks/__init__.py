"""Software stacks as data: what a training or serving stack does that changes its cost.

A stack file (``cost_models/stacks/data/<name>.yaml``) names the stack, its ``kind``
(``train`` or ``serve``), a ``title``, and ``facts``: each fact a key of
:data:`cost_models.options.TRAIN_FACTS` or :data:`cost_models.options.SERVE_FACTS` with its
``value`` and the ``source`` that states it (release notes, code, paper). A fact the stack
file does not state takes the options' default. ``--framework KEY=VALUE`` (or an experiment's
``workload.framework``) overrides single facts on top (:func:`resolve_train`,
:func:`resolve_serve`). Defaults: :data:`DEFAULT_TRAIN_STACK`, :data:`DEFAULT_SERVE_STACK`.

Errors are one line naming the file or flag and the allowed values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from cost_models.options import (
    SERVE_FACTS,
    TRAIN_FACTS,
    FactSchema,
    ServeOptions,
    TrainOptions,
)

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_SERVE_STACK",
    "DEFAULT_TRAIN_STACK",
    "POOLED_OVERHEAD",
    "STACK_DIR",
    "Stack",
    "StackKind",
    "calibrated_step_overhead_s",
    "load_stack",
    "resolve_serve",
    "resolve_train",
    "serving_calibration",
    "stack_names",
]

StackKind = Literal["train", "serve"]
STACK_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_TRAIN_STACK = "megatron-core"
DEFAULT_SERVE_STACK = "vllm"
# Per serving stack, the fitted host time per engine iteration (cost_models.validation.inference_fit)
CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"
POOLED_OVERHEAD = "*"
_TOP_KEYS = ("name", "kind", "title", "facts")
_SCHEMAS: dict[str, FactSchema] = {"train": TRAIN_FACTS, "serve": SERVE_FACTS}


@dataclass(frozen=True, kw_only=True)
class Stack:
    """One stack file: its facts (checked, in their field types) and each fact's source."""

    name: str
    kind: StackKind
    title: str
    facts: Mapping[str, Any]
    sources: Mapping[str, str]


def stack_names(kind: StackKind | None = None) -> tuple[str, ...]:
    """Names of the shipped stacks (of ``kind``, or all), sorted."""
    return tuple(n for n in _shipped_names() if kind is None or _shipped(n).kind == kind)


@cache
def _shipped_names() -> tuple[str, ...]:
    # the shipped files do not change while a process runs; every trial resolves its stack
    return tuple(sorted(p.stem for p in STACK_DIR.glob("*.yaml")))


def load_stack(name_or_path: str, *, kind: StackKind | None = None, flag: str = "--stack") -> Stack:
    """A shipped stack by name, or a stack file by path; ``kind`` is the kind the caller needs
    (a serving stack for a training estimate is an error naming ``flag``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        stack = _parse(path)
    elif name_or_path in _shipped_names():
        stack = _shipped(name_or_path)
    else:
        allowed = ", ".join(stack_names(kind))
        raise ValueError(f"{flag}: unknown stack {name_or_path!r}; allowed: {allowed}")
    if kind is not None and stack.kind != kind:
        allowed = ", ".join(stack_names(kind))
        raise ValueError(
            f"{flag}: {stack.name!r} is a {stack.kind} stack; for {kind} use one of: {allowed}"
        )
    return stack


def resolve_train(
    stack: str | None = None, overrides: Mapping[str, Any] | None = None, *,
    flag: str = "--stack", where: str = "--framework",
) -> tuple[Stack, TrainOptions]:  # fmt: skip
    """The training stack (default :data:`DEFAULT_TRAIN_STACK`) and its options with
    ``overrides`` applied on top (errors name ``where``)."""
    chosen, facts = _layered("train", stack or DEFAULT_TRAIN_STACK, overrides, flag, where)
    return chosen, TrainOptions(**facts)


def resolve_serve(
    stack: str | None = None, overrides: Mapping[str, Any] | None = None, *,
    flag: str = "--stack", where: str = "--framework",
) -> tuple[Stack, ServeOptions]:  # fmt: skip
    """The serving stack (default :data:`DEFAULT_SERVE_STACK`) and its options: the
    calibrated per-iteration overhead, then the stack file's facts, then ``overrides``."""
    chosen, facts = _layered("serve", stack or DEFAULT_SERVE_STACK, overrides, flag, where)
    fitted = calibrated_step_overhead_s()
    value = fitted.get(chosen.name, fitted.get(POOLED_OVERHEAD))
    base = {} if value is None else {"step_overhead_s": value}
    return chosen, ServeOptions(**{**base, **facts})


def _layered(
    kind: StackKind, name: str, overrides: Mapping[str, Any] | None, flag: str, where: str
) -> tuple[Stack, dict[str, Any]]:
    """The stack of ``kind`` and its facts with the checked ``overrides`` on top."""
    chosen = load_stack(name, kind=kind, flag=flag)
    extra = _SCHEMAS[kind].parse(overrides or {}, where=where)
    return chosen, {**chosen.facts, **extra}


@cache
def serving_calibration() -> dict[str, Any]:
    """The serving calibration :data:`CALIBRATION_FILE` holds (per-stack step overheads, the
    GEMM derate and overlap; :mod:`cost_models.validation.inference_fit` writes it), read once."""
    data: dict[str, Any] = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    return data


@cache
def calibrated_step_overhead_s() -> dict[str, float]:
    """``step_overhead_s`` fitted on the inference measurements
    (:mod:`cost_models.validation.inference_fit`): per serving stack where that stack has
    rows from three or more publications, else the value pooled over every engine's rows
    (key :data:`POOLED_OVERHEAD`). A stack file that states the fact, or ``--framework
    step_overhead_s=...``, wins over it."""
    fitted = serving_calibration()["step_overhead_s"]
    return {str(k): float(v) for k, v in fitted.items()}


@cache
def _shipped(name: str) -> Stack:
    return _parse(STACK_DIR / f"{name}.yaml")


def _parse(path: Path) -> Stack:
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{where}: cannot read a stack file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(_TOP_KEYS)}")
    kind = data.get("kind")
    if kind not in _SCHEMAS:
        raise ValueError(f"{where}: kind: must be one of train, serve; got {kind!r}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: name: must be a non-empty string")
    facts, sources = _facts(data.get("facts") or {}, _SCHEMAS[kind], where=where)
    return Stack(name=name, kind=kind, title=str(data.get("title", name)), facts=facts,
                 sources=sources)  # fmt: skip


def _facts(raw: Any, schema: FactSchema, *, where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Each fact as ``{value, source}``; the values checked by ``schema``."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: facts: expected a mapping of key: {{value, source}}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"value", "source"}:
            raise ValueError(f"{where}: facts.{key}: expected {{value: ..., source: ...}}")
        if not str(entry["source"]).strip():
            raise ValueError(f"{where}: facts.{key}.source: must name where the fact comes from")
        values[key] = entry["value"]
        sources[key] = str(entry["source"])
    return schema.parse(values, where=f"{where}: facts"), sources
