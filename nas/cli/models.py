"""``nas models`` and ``nas spaces``: reference models and search spaces. Parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from nas.cli._common import JsonFlag, UserError, console, print_json
from nas.cli.app import app
from nas.units import format_metric

models_app = typer.Typer(
    help="Reference models: list them, show one's counts.", no_args_is_help=True
)
spaces_app = typer.Typer(help="Search spaces: list, show, sample.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(spaces_app, name="spaces")


@models_app.command("list")
def models_list(json_out: JsonFlag = False) -> None:
    """Table of the reference models (parameters in human units; --json: counts as numbers)."""
    from search_spaces.catalogue import list_models, load_model, model_summary

    keys = ("type", "params_total", "params_active", "num_layers", "d_model", "source")
    rows = []
    for name in list_models():
        s = model_summary(load_model(name))
        rows.append({"name": name, **{k: s[k] for k in keys}})
    if json_out:
        print_json(rows)
        return
    table = Table(title="Reference models")
    for col in ("name", "type", "params total", "params active", "layers", "d_model", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["type"],
            format_metric("params_total", r["params_total"]),
            format_metric("params_active", r["params_active"]),
            str(r["num_layers"]),
            str(r["d_model"]),
            r["source"],
        )
    console.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[
        str, typer.Argument(help="Reference model name, model .yaml, or HF config.json")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    seq_len: Annotated[
        int, typer.Option("--seq-len", help="Context length for flops_per_token")
    ] = 4096,
    dtype: Annotated[str, typer.Option("--dtype", help="KV-cache dtype")] = "bf16",
) -> None:
    """Counts (parameters, FLOPs per token, KV cache per token) and fields of one model."""
    from search_spaces.catalogue import load_model, model_summary

    if seq_len <= 0:
        raise UserError(f"--seq-len: must be a positive integer, got {seq_len}")
    summary = model_summary(load_model(model), seq_len=seq_len, dtype=dtype)
    if json_out:
        print_json(summary)
        return
    table = Table(title=summary["name"], show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        table.add_row(key, _format(key, value))
    console.print(table)


def _format(key: str, value: Any) -> str:
    """Exact counts with their human form (:mod:`nas.units`) beside them."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    human = format_metric(key, value)
    if key.startswith("params_") or key.endswith("_bytes_per_token"):
        return f"{value:,.0f} ({human})"
    return human if key == "flops_per_token" else f"{value:,}"


def _parse_override(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    path = Path(text)
    if text.endswith((".yaml", ".yml")) and not path.is_file():
        raise UserError(f"--override: {text}: file not found")
    if path.is_file():
        from nas.safe_yaml import load_yaml_file

        data = load_yaml_file(path)  # UTF-8, depth and 64-bit integers checked, file named
    else:
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError):
            raise UserError(f"--override: malformed YAML mapping: {text[:60]!r}") from None
    if not isinstance(data, dict):
        raise UserError("--override: must be a YAML mapping like '{num_layers: [16, 64]}'")
    return data


_OVERRIDE_HELP = (
    "YAML mapping of parameter domains (inline or a .yaml file), "
    "e.g. '{num_layers: [16, 64], top_k: 2}'"
)


@spaces_app.command("list")
def spaces_list(json_out: JsonFlag = False) -> None:
    """Registered search spaces with their size."""
    from search_spaces.spaces import get_space, list_spaces

    rows: list[dict[str, Any]] = []
    for name in list_spaces():
        space = get_space(name)
        rows.append(
            {
                "name": name,
                "searched": list(space.searched()),
                "candidates": space.size(),
                "description": space.description,
            }
        )
    if json_out:
        print_json(rows)
        return
    table = Table(title="Search spaces")
    for col in ("name", "searched parameters", "candidates", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], ", ".join(r["searched"]), f"{r['candidates']:,}", r["description"])
    console.print(table)


@spaces_app.command("show")
def spaces_show(
    name: Annotated[str, typer.Argument(help="Registered space name or a space .yaml file")],
    override: Annotated[str | None, typer.Option("--override", help=_OVERRIDE_HELP)] = None,
    json_out: JsonFlag = False,
) -> None:
    """Parameters, their domains and the number of candidates."""
    from search_spaces.spaces import get_space

    space = get_space(name, _parse_override(override))
    if json_out:
        params = [{"parameter": p, "domain": d, "values": n} for p, d, n in space.describe()]
        print_json(
            {
                "name": space.name,
                "description": space.description,
                "parameters": params,
                "fixed": dict(space.base),
                "candidates": space.size(),
            }
        )
        return
    table = Table(title=f"{space.name}: {space.description}")
    for col in ("parameter", "domain", "values"):
        table.add_column(col)
    for param, domain, count in space.describe():
        table.add_row(param, domain, str(count))
    console.print(table)
    fixed = ", ".join(f"{k}={v}" for k, v in space.base.items())
    console.print(f"fixed: {fixed}")
    console.print(f"size: {space.size():,} feasible candidates")


@spaces_app.command("sample")
def spaces_sample(
    name: Annotated[str, typer.Argument(help="Registered space name or a space .yaml file")],
    n: Annotated[int, typer.Option("-n", help="Number of candidates")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random sampler")] = 0,
    override: Annotated[str | None, typer.Option("--override", help=_OVERRIDE_HELP)] = None,
) -> None:
    """Draw candidates with Optuna's RandomSampler and print their shapes and sizes."""
    from search_spaces.catalogue import model_summary
    from search_spaces.spaces import get_space, sample_space

    space = get_space(name, _parse_override(override))
    rows = sample_space(space, n, seed=seed)
    # One column per sample, one row per parameter: stays readable in 80 columns.
    table = Table(title=f"{n} samples of {space.name} (seed {seed})")
    table.add_column("")
    for i in range(len(rows)):
        table.add_column(f"#{i}", justify="right")
    for p in space.searched():
        table.add_row(p, *(str(params.get(p, "")) for params, _ in rows))
    archs = [arch for _, arch in rows]
    summaries = [model_summary(a) for a in archs]
    table.add_row("heads/kv", *(f"{a.num_heads}/{a.num_kv_heads}" for a in archs))
    table.add_row("d_ff", *(str(a.d_ff) for a in archs))
    if space.searched().keys() & {"num_experts", "granularity"}:
        table.add_row("d_expert", *(str(a.moe.d_expert) if a.moe else "-" for a in archs))
    table.add_row(
        "params total", *(format_metric("params_total", s["params_total"]) for s in summaries)
    )
    table.add_row(
        "params active", *(format_metric("params_active", s["params_active"]) for s in summaries)
    )
    console.print(table)
