"""Reading user YAML files safely: every failure is one line that names the file.

* the bytes must be UTF-8 (a codec error names the file and the byte offset);
* nesting is capped at :data:`MAX_DEPTH` before the document is built (PyYAML's composer
  recurses once per level, so 20,000 nested brackets would end in a RecursionError);
* only plain YAML types (``yaml.SafeLoader``: no ``!!python/object``), each key once per
  mapping;
* integers must fit in 64 bits (they end up in numpy / parquet columns, where a larger
  one overflows long after the file was accepted);
* ``1e12`` and ``1.0e12`` are numbers, as in YAML 1.2 (PyYAML follows YAML 1.1, which needs
  a dot and a signed exponent, ``1.0e+12``, and read the others as text).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["INT64_MAX", "MAX_DEPTH", "YamlFileError", "check_int64", "load_yaml_file"]

# No file of this project nests deeper than ~6 levels; 64 leaves room for any real file
# while staying far below Python's recursion limit (1,000 frames, a few per level).
MAX_DEPTH = 64
INT64_MAX = 2**63 - 1  # numpy int64 / parquet INT64 columns


class YamlFileError(ValueError):
    """A YAML file that cannot be read; one line naming it."""


def _check_depth(text: str, source: str) -> None:
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise YamlFileError(
                        f"{source}: nested deeper than {MAX_DEPTH} levels (line {line})"
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{source}: not valid YAML: {_one_line(exc)}") from None


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the
    last, so ``name:`` twice silently named the run after the second)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader says so itself
                continue
            if duplicate:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is given twice"
                )
        return super().construct_mapping(node, deep=deep)


# YAML 1.2's float forms that YAML 1.1 lacks: an exponent without a dot or without a sign
# (the 1.1 forms, .inf and .nan keep PyYAML's own resolver)
_FLOAT_1_2 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_UniqueKeyLoader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    "tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789.")
)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def check_int64(value: object, *, where: str, _seen: set[int] | None = None) -> None:
    """Raise :class:`YamlFileError` if an integer anywhere in ``value`` exceeds 64 bits."""
    seen = _seen if _seen is not None else set()
    if isinstance(value, (dict, list)):
        if id(value) in seen:  # an alias: already checked (and no billion-laughs walk)
            return
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            check_int64(item, where=f"{where}.{key}" if where else str(key), _seen=seen)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise YamlFileError(f"{where or 'value'}: integer {value} is too large (max {INT64_MAX})")


def load_yaml_file(path: Path) -> Any:
    """The YAML document in ``path`` (``yaml.safe_load``), after the checks of the module
    docstring; every problem is a :class:`YamlFileError` naming the file."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    _check_depth(text, source)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise YamlFileError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{source}: not valid YAML: {_one_line(exc)}") from None
    try:
        check_int64(data, where="")
    except YamlFileError as exc:
        raise YamlFileError(f"{source}: {exc}") from None
    return data
