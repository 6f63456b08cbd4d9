"""``nas validate``: the cost models against the published measurements the project carries
(``cost_models/validation/data/*_measurements.csv``): per row measured vs predicted and the error, then
the median and worst absolute error. Parses, calls, prints."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._common import console, print_json
from nas.cli.app import app
from nas.units import format_number, format_value


class KindOpt(str, Enum):
    """``--kind``: which measurements are compared."""

    all = "all"
    train = "train"
    inference = "inference"


def _training_rows() -> list[dict[str, Any]]:
    from cost_models.validation.train import validate_training_rows

    return [dict(r, kind="train") for r in validate_training_rows()]


def _inference_rows() -> list[dict[str, Any]]:
    from cost_models.validation.inference import validate_inference_rows

    return [dict(r, kind="inference", unit="s") for r in validate_inference_rows()]


# kind -> function returning row dicts with id, kind, source, metric, unit, measured,
# predicted, error (predicted / measured - 1); more kinds plug in here.
VALIDATORS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "train": _training_rows,
    "inference": _inference_rows,
}


def _fmt(value: float, unit: str) -> str:
    """A measured or predicted figure with its unit (:mod:`nas.units`; GiB rows as published)."""
    if unit == "s":
        return format_value(value, "seconds")
    if unit == "tok/s":
        return format_value(value, "rate", unit="tokens/s")
    return f"{format_number(value)} {unit}".strip()


HEADLINE_METHOD = (
    "leave-one-source-out: each row predicted by a model whose calibrated parameters were "
    "fitted without any row of its publication (docs/validation.md)"
)


def _print_headline(heads: dict[str, Any]) -> None:
    table = Table(title="Headline: leave-one-source-out |error| (rows of unseen publications)")
    cols = ("family", "rows", "sources", "median", "median of sources", "worst", "worst row")
    for col in cols:
        table.add_column(col, justify="left" if col in ("family", "worst row") else "right")
    for name, h in heads.items():
        table.add_row(name, str(h["rows"]), str(h["sources"]), f"{h['median_abs_error']:.1%}",
                      f"{h['median_of_publication_medians']:.1%}",
                      f"{h['worst_abs_error']:.1%}", h["worst_id"])  # fmt: skip
    console.print(table)


def _print_beyond(heads: dict[str, Any]) -> None:
    """One line: the rows whose leave-one-source-out |error| exceeds the bound (worst first)."""
    from cost_models.validation.holdout import ROW_BOUND

    ids = [f"{b['id']} {b['error']:+.0%}" for h in heads.values() for b in h["beyond_bound"]]
    console.print(
        f"Rows beyond {ROW_BOUND:.0%} held out: {', '.join(ids) if ids else 'none'}", markup=False
    )


def _print_refused(refused: dict[str, list[dict[str, str]]]) -> None:
    """One line: the published rows on file that get no estimate (none, or their ids)."""
    ids = [f"{r['id']} ({kind})" for kind, rows in refused.items() for r in rows]
    files = ", ".join(f"{kind}_measurements_refused.csv" for kind in refused)
    console.print(
        f"Rows refused (no estimate): {', '.join(ids) if ids else 'none'} (listed in {files})",
        markup=False,
    )


def unfit_runs(rows: list[dict[str, Any]]) -> list[str]:
    """Ids of published throughput rows (runs that ran) whose stated plan the model says
    needs more memory than the device has."""
    return [str(r["id"]) for r in rows if r.get("unit") != "GiB" and r.get("fits") is False]


def _print_unfit(ids: list[str]) -> None:
    console.print(
        f"Published runs the model says do not fit in memory: {', '.join(ids) or 'none'}",
        markup=False,
    )


def _parameter_value(x: float, unit: str) -> str:
    return format_value(x, "seconds") if unit == "s" else f"{x:.3g}"


def _print_parameters(params: list[dict[str, Any]]) -> None:
    table = Table(title="Calibrated parameters (fitted on the rows; range = the grid fitted over)")
    for col in ("parameter", "applies to", "value", "range", "meaning"):
        table.add_column(col, justify="right" if col in ("value", "range") else "left")
    for p in params:
        low, value, high = (_parameter_value(p[k], p["unit"]) for k in ("low", "value", "high"))
        table.add_row(p["name"], p["applies_to"], value, f"{low} - {high}", p["meaning"])
    console.print(table)


@app.command("validate")
def validate_cmd(
    kind: Annotated[
        KindOpt, typer.Option("--kind", help="Which measurements to run.")
    ] = KindOpt.all,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print rows and summaries as JSON.")
    ] = False,
) -> None:
    """The cost models against every published row: first the leave-one-source-out error
    (headline), then measured vs predicted per row, with median and worst |error|."""
    from cost_models.validation.train import summarize

    kinds = list(VALIDATORS) if kind is KindOpt.all else [kind.value]
    missing = [k for k in kinds if k not in VALIDATORS]
    if missing:
        raise ValueError(f"--kind: no validator for {missing[0]!r}; have {', '.join(VALIDATORS)}")
    rows = [row for k in kinds for row in VALIDATORS[k]()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(f"{row['kind']} {row.get('metric', '')}".strip(), []).append(row)
    summaries = {name: summarize(group) for name, group in groups.items()}
    for k in kinds:  # one line over every metric of a kind (the accuracy targets are per kind)
        of_kind = [row for row in rows if row["kind"] == k]
        if len({r.get("metric") for r in of_kind}) > 1:
            summaries[f"{k} (all)"] = summarize(of_kind)
    from cost_models.validation.holdout import headline, held_out_errors, refused_rows

    held = held_out_errors(rows)
    for row, error in zip(rows, held, strict=True):
        row["held_out_error"] = error
    heads = headline(rows, held)
    from cost_models.validation.parameters import calibrated_parameters

    params = calibrated_parameters()
    refused = {k: v for k, v in refused_rows().items() if k in kinds}
    if as_json:
        print_json({"headline": {"method": HEADLINE_METHOD, "families": heads},
                    "calibration": params, "rows": rows, "summary": summaries,
                    "refused": refused, "unfit": unfit_runs(rows)})  # fmt: skip
        return
    _print_headline(heads)
    _print_beyond(heads)
    _print_refused(refused)
    _print_unfit(unfit_runs(rows))
    _print_parameters(params)
    table = Table(title="Cost models vs published measurements")
    for col in (
        "id",
        "kind",
        "source",
        "model",
        "hardware",
        "metric",
        "measured",
        "predicted",
        "error",
        "held out",
    ):
        table.add_column(
            col,
            justify="right" if col in ("measured", "predicted", "error") else "left",
            overflow="fold",
        )
    for r in rows:
        err = r["error"]
        colour = "green" if abs(err) <= 0.10 else "yellow" if abs(err) <= 0.30 else "red"
        unit = r.get("unit", "")
        table.add_row(
            r["id"],
            r["kind"],
            r.get("source", ""),
            r.get("model", ""),
            r.get("hardware", ""),
            str(r.get("metric", "")),
            _fmt(r["measured"], unit),
            _fmt(r["predicted"], unit),
            f"[{colour}]{err:+.1%}",
            f"{r['held_out_error']:+.1%}",
        )
    console.print(table)
    console.print("Secondary: error with the shipped calibration (fitted on these rows):")
    for name, s in summaries.items():
        console.print(
            f"{name}: {s['rows']} rows, median |error| {s['median_abs_error']:.1%}, "
            f"worst {s['worst_abs_error']:.1%} ({s['worst_id']})"
        )
