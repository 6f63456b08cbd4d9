"""``nas hw collective``: time of one collective on a system profile. Parsing and printing only."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.table import Table

from nas.cli._common import UserError, console, print_json
from nas.cli.hw import hw_app

_OPS = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all", "broadcast", "p2p")


@hw_app.command("collective")
def hw_collective(
    system_name: Annotated[str, typer.Argument(metavar="SYSTEM", help="System name or YAML path.")],
    op: Annotated[str, typer.Option("--op", help="|".join(_OPS))],
    size_bytes: Annotated[
        float, typer.Option("--bytes", help="Per-rank buffer in bytes (nccl-tests convention).")
    ],
    group: Annotated[int, typer.Option("--group", help="Ranks in the group.")],
    stride: Annotated[int, typer.Option("--stride", help="Devices between consecutive ranks.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Time, algorithm and bus bandwidth of one collective (nccl-tests conventions)."""
    from cost_models.network.collectives import collective
    from hw_profiles.loader import load_system

    if op not in _OPS:
        raise UserError(f"--op: unknown collective {op!r}; choose one of {', '.join(_OPS)}")
    if group < 1 or stride < 1:
        raise UserError(f"--group/--stride: must be positive integers, got {group}/{stride}")
    if not (math.isfinite(size_bytes) and size_bytes >= 0):
        raise UserError(f"--bytes: must be a finite number >= 0, got {size_bytes}")
    system = load_system(system_name)
    span = group * stride
    if span > system.max_devices:
        raise UserError(
            f"--group: {group} ranks at stride {stride} span {span} devices; "
            f"{system.name} allows at most {system.max_devices}"
        )
    if span > system.num_devices:
        system = system.scaled(span)
    result = collective(
        system,
        op=op.replace("-", "_"),  # type: ignore[arg-type]
        size_bytes=size_bytes,
        group_size=group,
        stride=stride,
    )
    record = {
        "system": system.name,
        "op": op,
        "size_bytes": size_bytes,
        "group_size": group,
        "stride": stride,
        "time_s": result.time_s,
        "algorithm": result.algorithm,
        "protocol": result.protocol,
        "algorithm_bandwidth_bytes_per_s": result.algorithm_bandwidth_bytes_per_s,
        "bus_bandwidth_bytes_per_s": result.bus_bandwidth_bytes_per_s,
        "tiers": list(result.tiers),
    }
    if as_json:
        print_json(record)
        return
    table = Table(title=f"{op} on {system.name}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("buffer", f"{size_bytes:,.0f} B ({size_bytes / 2**20:,.3f} MiB)")
    table.add_row("group", f"{group} ranks, stride {stride}")
    table.add_row("tiers crossed", ", ".join(result.tiers) or "-")
    table.add_row("algorithm / protocol", f"{result.algorithm} / {result.protocol}")
    table.add_row("time", f"{result.time_s * 1e6:,.2f} us")
    table.add_row(
        "algorithm bandwidth", f"{result.algorithm_bandwidth_bytes_per_s / 1e9:,.1f} GB/s"
    )
    table.add_row("bus bandwidth", f"{result.bus_bandwidth_bytes_per_s / 1e9:,.1f} GB/s")
    console.print(table)
