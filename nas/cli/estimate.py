"""``nas estimate``: time and memory of training or inference for one model on one system
(the contract in ``docs/design.md``). Parses, calls :func:`cost_models.estimate`, prints."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer
from rich.table import Table

from cost_models.plan import DEFAULT_BATCH, DEFAULT_GEN_LEN, DEFAULT_PROMPT_LEN
from cost_models.stacks import DEFAULT_SERVE_STACK, DEFAULT_TRAIN_STACK, stack_names
from nas.cli._common import UserError, console, print_json
from nas.cli.app import app
from nas.cli.estimate_explain import batch_note, nothing_fits, why_this_plan
from nas.explain import MEMORY_HEADROOM
from nas.units import format_metric, format_value, gib_and_gb

STACK_HELP = ", ".join(stack_names())  # file names only: nothing parsed at start-up


class ModeOpt(str, Enum):
    """``--mode``: what is estimated."""

    train = "train"
    prefill = "prefill"
    decode = "decode"


class RecomputeOpt(str, Enum):
    """``--recompute``: activation recomputation mode."""

    none = "none"
    selective = "selective"
    full = "full"


class DtypeOpt(str, Enum):
    """``--dtype``: training precision (weights, for inference, unless --weight-dtype)."""

    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"


def _fmt(key: str, value: Any) -> str:
    """One figure of the estimate in human units (:mod:`nas.units`); memory in GiB and GB."""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if key.endswith("_bytes") and isinstance(value, (int, float)):
        return gib_and_gb(value)
    return format_metric(key, value)


def _breakdown(title: str, parts: dict[str, float], unit_key: str) -> Table:
    total = sum(parts.values()) or 1.0
    table = Table(title=title)
    for col in ("part", "value", "share"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for name, value in parts.items():
        table.add_row(name, _fmt(unit_key, value), f"{value / total:.1%}")
    table.add_row("[bold]total", f"[bold]{_fmt(unit_key, total)}", "100%")
    return table


def render(result: dict[str, Any]) -> None:
    """Readable tables: the headline figures, the plan, both breakdowns, the top ops."""
    summary = Table(
        title=f"{result.get('model', '')} on {result.get('num_devices', '')}x "
        f"{result.get('system', '')} ({result.get('mode', '')}, stack {result.get('stack', '')})"
    )
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for key, value in result.items():
        if isinstance(value, (int, float, bool)) and key != "num_devices":
            summary.add_row(key, _fmt(key, value))
    console.print(summary)
    plan = result.get("plan", {})
    chosen = set(result.get("planner", {}).get("chosen", []))
    picked = "chosen by the planner" if result.get("fits", True) else "fastest, does NOT fit"
    # one replica (no hybrid sharding) is the default nobody chose: not shown
    shown_plan = {k: v for k, v in plan.items() if not (k == "dp_replicate" and v == 1)}
    console.print(
        "plan: "
        + "  ".join(f"{k}={v}{'*' if k in chosen else ''}" for k, v in shown_plan.items())
        + (f"   (* {picked})" if chosen else "")
    )
    if result.get("mode") == "train":
        batch_note(result)
        why_this_plan(result)
    shown: list[dict[str, Any]] = []
    for key, value in result.items():
        if not key.endswith(("breakdown_s", "breakdown_bytes")) or not isinstance(value, dict):
            continue
        if value in shown:  # decode: time_breakdown_s is decode_time_breakdown_s
            continue
        shown.append(value)
        unit = "x_s" if key.endswith("breakdown_s") else "x_bytes"
        console.print(_breakdown(key.replace("_", " "), value, unit))
    if result.get("mode") in ("prefill", "decode"):
        console.print(
            "[dim]time 'other': the fixed launch and gap time of every kernel "
            "(cost_models.inference.cost), outside compute and memory traffic"
        )
    ops = result.get("ops_per_microbatch", [])
    if ops:
        table = Table(title="ops of one micro-batch on the slowest stage (per device)")
        for col in ("op", "kind", "forward FLOPs", "forward", "backward"):
            table.add_column(col, justify="left" if col in ("op", "kind") else "right")
        for op in sorted(ops, key=lambda o: -(o["forward_s"] + o["backward_s"])):
            table.add_row(
                op["name"],
                op["kind"],
                format_value(op["forward_flops"], "flops"),
                _fmt("x_s", op["forward_s"]),
                _fmt("x_s", op["backward_s"]),
            )
        console.print(table)
    if "conventions" in result:
        for text in result["conventions"].values():
            console.print(f"[dim]{text}")


@app.command("estimate")
def estimate_cmd(
    model: Annotated[
        str, typer.Argument(help="Reference model name, model YAML or HF config.json.")
    ],
    hardware: Annotated[str, typer.Option("--hardware", help="System profile name or YAML file.")],
    num_devices: Annotated[
        int | None,
        typer.Option(
            "--num-devices",
            help="Devices.",
            show_default="tp*pp*dp*cp if all are given, else one node",
        ),
    ] = None,
    mode: Annotated[ModeOpt, typer.Option("--mode")] = ModeOpt.train,
    tp: Annotated[int | None, typer.Option("--tp")] = None,
    pp: Annotated[int | None, typer.Option("--pp")] = None,
    dp: Annotated[int | None, typer.Option("--dp")] = None,
    ep: Annotated[int | None, typer.Option("--ep")] = None,
    cp: Annotated[int | None, typer.Option("--cp")] = None,
    vpp: Annotated[int | None, typer.Option("--vpp")] = None,
    sequence_parallel: Annotated[
        bool | None, typer.Option("--sequence-parallel/--no-sequence-parallel")
    ] = None,
    micro_batch: Annotated[int | None, typer.Option("--micro-batch")] = None,
    global_batch: Annotated[int | None, typer.Option("--global-batch")] = None,
    seq_len: Annotated[
        int | None,
        typer.Option("--seq-len", help="Train: tokens per sequence.", show_default="4096"),
    ] = None,
    recompute: Annotated[RecomputeOpt | None, typer.Option("--recompute")] = None,
    zero: Annotated[int | None, typer.Option("--zero", help="0, 1, 2 or 3 (3 = FSDP).")] = None,
    dp_replicate: Annotated[
        int | None,
        typer.Option(
            "--dp-replicate",
            help="Hybrid sharding: replicas of the ZeRO-sharded state across dp (e.g. pods).",
            show_default="1",
        ),
    ] = None,
    dtype: Annotated[DtypeOpt, typer.Option("--dtype")] = DtypeOpt.bf16,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch", help="Prefill/decode: sequences per batch.", show_default=str(DEFAULT_BATCH)
        ),
    ] = None,
    prompt_len: Annotated[
        int | None,
        typer.Option(
            "--prompt-len",
            help="Prefill/decode: prompt tokens.",
            show_default=str(DEFAULT_PROMPT_LEN),
        ),
    ] = None,
    gen_len: Annotated[
        int | None,
        typer.Option(
            "--gen-len", help="Decode: generated tokens.", show_default=str(DEFAULT_GEN_LEN)
        ),
    ] = None,
    weight_dtype: Annotated[
        str | None,
        typer.Option(
            "--weight-dtype",
            help="Inference weights: bf16, fp16, fp8, int8 or int4.",
            show_default="--dtype",
        ),
    ] = None,
    kv_dtype: Annotated[
        str | None,
        typer.Option(
            "--kv-dtype",
            help="Inference KV cache: bf16, fp16, fp8 or int8.",
            show_default="bf16",
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help=f"Training or serving software (a stack name or file): {STACK_HELP}.",
            show_default=f"{DEFAULT_TRAIN_STACK} (train), {DEFAULT_SERVE_STACK} (prefill/decode)",
        ),
    ] = None,
    framework: Annotated[
        list[str] | None,
        typer.Option(
            "--framework",
            help="KEY=VALUE, repeatable: override one fact of the stack, e.g. "
            "tp_overlap=true (train) or step_overhead_s=0.002 (serve); docs/stacks.md.",
        ),
    ] = None,
    memory_headroom: Annotated[
        float,
        typer.Option(
            "--memory-headroom",
            help="Share of device memory a plan may use, training and serving (0 < x <= 1).",
        ),
    ] = MEMORY_HEADROOM,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Step time, throughput, MFU and memory (train) or TTFT/TPOT (prefill/decode); the
    planner picks every parallel degree not given."""
    from cost_models.estimate import estimate
    from cost_models.options import SERVE_FACTS, TRAIN_FACTS, parse_pairs
    from cost_models.plan import InferenceWorkload, PlanError, TrainWorkload
    from cost_models.stacks import resolve_serve, resolve_train
    from hw_profiles.loader import load_system
    from search_spaces.catalogue import load_model

    if not 0.0 < memory_headroom <= 1.0:
        raise UserError(f"--memory-headroom: must be in (0, 1], got {memory_headroom!r}")
    arch = load_model(model)
    degrees = {"tp": tp, "pp": pp, "dp": dp, "cp": cp}
    if num_devices is None and all(v is not None for v in degrees.values()):
        num_devices = int((tp or 1) * (pp or 1) * (dp or 1) * (cp or 1))
    system = load_system(hardware, num_devices)
    given = {
        "tp": tp,
        "pp": pp,
        "dp": dp,
        "ep": ep,
        "cp": cp,
        "vpp": vpp,
        "sequence_parallel": sequence_parallel,
        "micro_batch": micro_batch,
        "global_batch": global_batch,
        "zero": zero,
        "dp_replicate": dp_replicate,
        "recompute": recompute.value if recompute is not None else None,
    }
    fixed = {k: v for k, v in given.items() if v is not None}
    serving: dict[str, object] = {"--batch": batch, "--prompt-len": prompt_len}
    serving |= {"--gen-len": gen_len, "--weight-dtype": weight_dtype, "--kv-dtype": kv_dtype}
    if mode is ModeOpt.train:
        pairs = parse_pairs(framework or [], keys=TRAIN_FACTS.keys)
        used, options = resolve_train(stack, pairs)
        unused = [flag for flag, value in serving.items() if value is not None]
        if unused:
            raise PlanError(f"{unused[0]}: only for --mode prefill or decode")
        workload_t = TrainWorkload(seq_len=4096 if seq_len is None else seq_len, dtype=dtype.value)
        result = estimate(
            arch,
            system,
            workload_t,
            fixed=fixed,
            options=options,
            memory_headroom=memory_headroom,
        )
        if not as_json and not result["fits"]:
            from nas.explain import smallest_fitting_devices

            smallest = smallest_fitting_devices(
                arch,
                hardware,
                workload_t,
                fixed=fixed,
                options=options,
                memory_headroom=memory_headroom,
                start=system.num_devices,
            )
            nothing_fits(
                result, smallest=smallest, command=f"nas estimate {model} --hardware {hardware}"
            )
    else:
        if seq_len is not None:
            raise PlanError("--seq-len: only for --mode train (use --prompt-len and --gen-len)")
        pairs = parse_pairs(framework or [], keys=SERVE_FACTS.keys)
        used, serve = resolve_serve(stack, pairs)
        workload = InferenceWorkload(
            batch=DEFAULT_BATCH if batch is None else batch,
            prompt_len=DEFAULT_PROMPT_LEN if prompt_len is None else prompt_len,
            gen_len=DEFAULT_GEN_LEN if gen_len is None else gen_len,
            weight_dtype=weight_dtype or dtype.value,  # type: ignore[arg-type]
            kv_dtype=kv_dtype or "bf16",  # type: ignore[arg-type]
        )
        inference_keys = {"tp", "pp", "dp", "ep"}
        extra = sorted(set(fixed) - inference_keys)
        if extra:
            raise PlanError(f"--{extra[0].replace('_', '-')}: only for --mode train")
        # degrees not given are chosen by the inference planner among those that fit
        result = estimate(
            arch,
            system,
            workload,
            None,
            fixed,
            mode=mode.value,
            serve=serve,
            memory_headroom=memory_headroom,
        )
    result = {**result, "stack": used.name}
    if as_json:
        print_json(result)
    else:
        render(result)
