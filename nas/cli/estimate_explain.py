"""Text that explains a training estimate: nothing fits (said first), why this plan (the top
plans side by side), and a global batch the planner chose. Printing only."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from nas.cli._common import console
from nas.units import format_value, gib_and_gb

_PLAN_COLUMNS = ("tp", "pp", "dp", "ep", "cp", "vpp", "micro_batch", "zero", "recompute")
# shown only where it is not the default (1: one replica, ZeRO shards over all of dp*cp)
_OPTIONAL_COLUMNS = {"dp_replicate": 1}


def _plan_text(plan: dict[str, Any]) -> str:
    """The plan's degrees; sequence parallelism only where TP > 1 (plans differing in it
    alone would otherwise read the same)."""
    parts = [f"{k}={plan[k]}" for k in _PLAN_COLUMNS if k in plan]
    parts += [f"{k}={plan[k]}" for k, d in _OPTIONAL_COLUMNS.items() if plan.get(k, d) != d]
    if plan.get("tp", 1) > 1 and "sequence_parallel" in plan:
        parts.insert(1, f"sp={'on' if plan['sequence_parallel'] else 'off'}")
    return " ".join(parts)


def nothing_fits(result: dict[str, Any], *, smallest: int | None, command: str) -> None:
    """The first lines when no plan fits: by how much, the least-memory plan, and the
    smallest device count of this system on which one fits."""
    limit = result["memory_headroom"] * result["device_memory_bytes"]
    console.print(
        f"[bold red]NOTHING FITS[/] on {result['num_devices']}x {result['system']}: the fastest "
        f"plan needs {gib_and_gb(result['memory_per_device_bytes'])} per device, the limit is "
        f"{result['memory_headroom']:g} x {gib_and_gb(result['device_memory_bytes'])} = "
        f"{gib_and_gb(limit)}"
    )
    low = result["planner"]["least_memory"]
    console.print(
        f"  least-memory plan: {_plan_text(low['plan'])} needs "
        f"{gib_and_gb(low['memory_per_device_bytes'])} per device"
    )
    if smallest is None:
        console.print(f"  no device count of {result['system']} up to its maximum fits")
    else:
        console.print(
            f"  smallest {result['system']} device count that fits: {smallest} "
            f"({command} --num-devices {smallest})"
        )
    console.print("  the figures below are for the fastest plan, which does NOT fit")


def why_this_plan(result: dict[str, Any]) -> None:
    """The planner's top plans with what separates them: step time, memory, bubble, comm."""
    top = result.get("planner", {}).get("top", [])
    if len(top) < 2:
        return
    best_s = top[0]["step_time_s"]
    device = result["device_memory_bytes"]
    table = Table(
        title=f"why this plan: the planner's top {len(top)} of "
        f"{result['planner']['candidates']:,} plans ({result['planner']['fitting']:,} fit)"
    )
    for col in ("#", "plan", "step time", "vs #1", "memory/device", "bubble", "comm", "fits"):
        table.add_column(col, justify="left" if col == "plan" else "right")
    for i, row in enumerate(top, start=1):
        table.add_row(
            str(i),
            _plan_text(row["plan"]),
            format_value(row["step_time_s"], "seconds", digits=4),
            f"{row['step_time_s'] / best_s - 1:+.2%}" if i > 1 else "",
            f"{row['memory_per_device_bytes'] / 2**30:,.1f} GiB "
            f"({row['memory_per_device_bytes'] / device:.0%})",
            format_value(row["pp_bubble_s"], "seconds"),
            format_value(row["comm_s"], "seconds"),
            "yes" if row["fits"] else "NO",
        )
    console.print(table)


def batch_note(result: dict[str, Any]) -> None:
    """Say so when the global batch was not given and the planner set it."""
    if "global_batch" not in result.get("planner", {}).get("chosen", []):
        return
    gbs = result["plan"]["global_batch"]
    console.print(
        f"note: global batch {gbs:,} sequences ({result['workload']['tokens_per_step']:,} "
        "tokens per step) was set by the planner (about 4M tokens, a multiple of the device "
        "count); give --global-batch to fix it"
    )
