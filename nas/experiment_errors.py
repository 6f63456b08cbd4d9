"""One-line messages for experiment validation errors: the dotted path of the offending key
in the input (tagged-union labels skipped), pydantic's message, and the allowed keys next
to an unknown one."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

__all__ = ["format_error"]

_MISSING = object()


def _child(node: object, item: int | str) -> object:
    """``node[item]`` for a mapping key or a list index present in the input, else a marker."""
    if isinstance(node, Mapping) and item in node:
        return node[item]
    if isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
        return node[item]
    return _MISSING


def _dotted(loc: tuple[int | str, ...], data: object) -> tuple[str, object]:
    """The dotted path of ``loc`` in the input, skipping union tags that are not keys."""
    parts: list[str] = []
    node: object = data
    for item in loc:
        child = _child(node, item)
        if child is not _MISSING:
            parts.append(str(item))
            node = child
        elif isinstance(node, Mapping) and not isinstance(item, int) and item not in node:
            if item in ("train", "serve", "KnobRange", "choices", "range") or "[" in str(item):
                continue  # a tagged-union or union-member label, not a key of the input
            parts.append(str(item))
            node = None
    return ".".join(parts) or "<top level>", node


def _allowed_keys(
    loc: tuple[int | str, ...],
    data: object,
    *,
    root: type[BaseModel],
    workloads: Mapping[str, type[BaseModel]],
) -> list[str]:
    """The field names allowed next to an unknown key (walking the models along ``loc``)."""
    model: type[BaseModel] | None = root
    node: object = data
    for item in loc[:-1]:
        if model is None:
            return []
        if item in ("train", "serve"):
            model = workloads[str(item)]
            continue
        field = model.model_fields.get(str(item))
        node = node.get(item) if isinstance(node, Mapping) else None
        if field is None:
            return []
        ann = field.annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)]
        model = next((a for a in candidates if issubclass(a, BaseModel)), None)
        if str(item) == "workload" and isinstance(node, Mapping):
            model = workloads["serve" if node.get("mode") == "serve" else "train"]
    return sorted(model.model_fields) if model is not None else []


def format_error(
    exc: ValidationError,
    data: object,
    *,
    source: str,
    root: type[BaseModel],
    workloads: Mapping[str, type[BaseModel]],
) -> str:
    """One line for a validation error: the dotted path of the first error in the input
    (union labels skipped), its message, the allowed keys next to an unknown one."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    path, _ = _dotted(loc, data)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc, data, root=root, workloads=workloads)
        msg = "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path, msg = f"{path}.mode", "must be train or serve"
    # the members of a union fail at the same key: one message listing what each expects
    same = [e for e in exc.errors() if _dotted(tuple(e["loc"]), data)[0] == path]
    if len(same) > 1 and err["type"] != "extra_forbidden":
        wanted = dict.fromkeys(str(e["msg"]).removeprefix("Input should be ") for e in same)
        msg = "expected " + " or ".join(wanted)
    others = len(exc.errors()) - max(len(same), 1)
    more = f" (+{others} more)" if others > 0 else ""
    prefix = f"{source}: " if source else ""
    head = msg.split(":", 1)[0]
    if not loc or head == path or head.startswith(f"{path}."):
        return f"{prefix}{msg}{more}"  # the message already names its key
    return f"{prefix}{path}: {msg}{more}"
