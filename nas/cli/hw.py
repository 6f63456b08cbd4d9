"""``nas hw``: list, show and profile hardware (devices and systems). Parsing and printing only."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._common import JsonFlag, UserError, check_out_file, console, print_json
from nas.cli.app import app

hw_app = typer.Typer(
    help="Hardware profiles: list and show systems and devices, profile this machine.",
    no_args_is_help=True,
)
app.add_typer(hw_app, name="hw")


@hw_app.command("list")
def hw_list(json_out: JsonFlag = False) -> None:
    """Table of the system profiles (device, devices per node, max devices, tiers)."""
    from hw_profiles.describe import tier_summary
    from hw_profiles.loader import list_systems, load_system

    rows: list[dict[str, Any]] = []
    for name in list_systems():
        system = load_system(name)
        rows.append(
            {
                "name": name,
                "device": system.device.name,
                "devices_per_node": system.devices_per_node,
                "max_devices": system.max_devices,
                "tiers": [tier_summary(t) for t in system.tiers],
            }
        )
    if json_out:
        print_json(rows)
        return
    table = Table(title="Systems")
    for col in ("name", "device", "devices/node", "max devices", "tiers (innermost first)"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["device"],
            str(r["devices_per_node"]),
            f"{r['max_devices']:,}",
            "; ".join(r["tiers"]),
        )
    console.print(table)


@hw_app.command("devices")
def hw_devices(json_out: JsonFlag = False) -> None:
    """Table of the device profiles (dense bf16 peak, memory, bandwidth, power); --json in
    SI units."""
    from hw_profiles.loader import list_devices, load_device

    devices = [load_device(name) for name in list_devices()]
    if json_out:
        print_json(
            [
                {
                    "name": d.name,
                    "vendor": d.vendor,
                    "kind": d.kind,
                    "peak_flops_per_s": dict(d.peak_flops_per_s),
                    "memory_bytes": d.memory_bytes,
                    "usable_memory_bytes": d.capacity_bytes,
                    "memory_bandwidth_bytes_per_s": d.memory_bandwidth_bytes_per_s,
                    "power_w": d.power_w,
                }
                for d in devices
            ]
        )
        return
    table = Table(title="Devices")
    cols = ("name", "vendor", "kind", "bf16 TFLOP/s", "memory GB", "usable GiB", "TB/s", "TDP W")
    for col in cols:
        table.add_column(col, overflow="fold")
    for d in devices:
        bf16 = d.peak_flops_per_s.get("bf16")
        table.add_row(
            d.name,
            d.vendor,
            d.kind,
            f"{bf16 / 1e12:,.1f}" if bf16 is not None else "-",
            f"{d.memory_bytes / 1e9:,.0f}",
            "-" if d.usable_memory_bytes is None else f"{d.usable_memory_bytes / 2**30:,.2f}",
            f"{d.memory_bandwidth_bytes_per_s / 1e12:.2f}",
            f"{d.power_w:,.0f}" if d.power_w > 0 else "?",
        )
    console.print(table)


@hw_app.command("show")
def hw_show(
    name: Annotated[str, typer.Argument(help="System or device name, or a profile .yaml path")],
    num_devices: Annotated[
        int | None, typer.Option("--num-devices", help="Scale a system to this many devices")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (SI units)")
    ] = False,
) -> None:
    """Every number of a system (tiers and device) or a device, with units and sources."""
    from hw_profiles.describe import device_rows, system_rows
    from hw_profiles.loader import load_profile
    from hw_profiles.types import System

    profile = load_profile(name)
    if num_devices is not None:
        if not isinstance(profile, System):
            raise UserError(f"--num-devices: {name!r} is a device, not a system")
        profile = profile.scaled(num_devices)
    if json_out:
        print_json(_as_dict(profile))
        return
    rows = system_rows(profile) if isinstance(profile, System) else device_rows(profile)
    table = Table(title=rows[0][1], show_header=True)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for field, value, source in rows[1:]:
        table.add_row(field, value, source)
    console.print(table)


def _as_dict(profile: Any) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, dict) or hasattr(value, "items"):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value

    out: dict[str, Any] = convert(dataclasses.asdict(profile))
    return out


@hw_app.command("profile")
def hw_profile(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the device profile YAML here.", show_default="print it"),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer sizes and repeats (~15 s on CPU)")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Profile name.", show_default="from the device")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch")] = None,
) -> None:
    """Measure this machine (GEMM FLOP/s by size and dtype, memory bandwidth) with torch and
    write a device profile that loads like any other."""
    from hw_profiles.profiler import profile_to_yaml, run_profile

    check_out_file(out, example="my-device.yaml")  # before minutes of measuring
    result = run_profile(quick=quick, name=name, threads=threads)
    text = profile_to_yaml(result)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)
