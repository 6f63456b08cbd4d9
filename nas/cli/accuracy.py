"""``nas loss``, ``nas train-proxy`` and ``nas fit-law``: the accuracy side of the trade-off."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nas.bounds import MAX_TOKENS, MIN_TOKENS
from nas.cli._common import UserError, check_out_file, console, print_json
from nas.cli.app import app


def _load_model(spec: str) -> Any:
    from search_spaces.catalogue import load_model

    return load_model(spec)


@app.command("loss")
def loss_cmd(
    model: Annotated[
        str | None, typer.Argument(help="Reference model name, model YAML or HF config.json.")
    ] = None,
    *,
    params: Annotated[
        float | None,
        typer.Option(
            "--params", help="Parameter count instead of MODEL (active parameters for an MoE)."
        ),
    ] = None,
    num_experts: Annotated[
        int | None,
        typer.Option("--num-experts", help="Routed experts (with --params; leave out for dense)."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option("--top-k", help="Experts per token (with --params).", show_default="1"),
    ] = None,
    granularity: Annotated[
        float | None,
        typer.Option("--granularity", help="d_ff / d_expert (with --params).", show_default="1"),
    ] = None,
    tokens: Annotated[float, typer.Option("--tokens", help="Training tokens D.")],
    law: Annotated[
        str,
        typer.Option(
            "--law", help="auto | hoffmann2022 | besiroglu2024 | clark2022 | krajewski2024"
        ),
    ] = "auto",
    shape_penalty: Annotated[
        bool,
        typer.Option(
            "--shape-penalty", help="Apply the approximate Kaplan shape/GQA penalty (MODEL only)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict the validation loss of MODEL (or of --params N) trained on --tokens D."""
    import numpy as np

    from nas.evaluators.base import named_as
    from nas.evaluators.scaling_law import ScalingLawEvaluator, predict_loss

    if (model is None) == (params is None):
        which = "not both" if model is not None else "neither was given"
        raise UserError(f"give either MODEL or --params N ({which})")
    _check_number("--tokens", tokens, low=MIN_TOKENS, high=MAX_TOKENS, what="token count")
    if model is not None:
        flags = {"--num-experts": num_experts, "--top-k": top_k, "--granularity": granularity}
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise UserError(f"{given[0]}: only with --params N (MODEL gives its own)")
    elif shape_penalty:
        raise UserError("--shape-penalty: only with MODEL (it needs the model's shape)")
    if params is not None:
        _check_number("--params", params, low=MIN_PARAMS, high=MAX_PARAMS, what="parameter count")
        experts, k, g = _moe_flags(num_experts, top_k, granularity)
        with named_as(_flag):  # law: ... -> --law: ...
            loss = predict_loss(
                law, params=params, tokens=tokens, num_experts=experts, top_k=k, granularity=g
            )
        value = float(np.asarray(loss))
        out: dict[str, Any] = {
            "law": law,
            "params": params,
            "tokens": tokens,
            "loss": value,
            "perplexity": float(np.exp(value)),
        }
        name = f"N={params:.4g}"
    else:
        assert model is not None
        arch = _load_model(model)
        with named_as(_flag):
            evaluator = ScalingLawEvaluator.from_settings(
                {"law": law, "shape_penalty": shape_penalty}
            )
            out = {"model": arch.name, "law": law, **evaluator.evaluate(arch, tokens=tokens)}
        name = arch.name
    if as_json:
        print_json(out)
        return
    typer.echo(
        f"{name}  D={tokens:.4g}  law={law}:  loss {out['loss']:.4f} nats/token, "
        f"perplexity {out['perplexity']:.3f}"
    )


# --params: scaling laws are fitted on models of 7e7 to 1.6e10 parameters (Hoffmann et al.
# 2022, arXiv 2203.15556, section 3); 1e6 to 1e15 (~500x the largest published models)
# keeps to models that exist or could, and refuses unit slips.
MIN_PARAMS = 1e6
MAX_PARAMS = 1e15
MAX_EXPERTS = 2**20  # a million experts (PEER, He 2024, arXiv 2407.04153)


def _check_number(flag: str, value: float, *, low: float, high: float, what: str) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise UserError(f"{flag}: must be a finite {what} in [{low:g}, {high:g}], got {value!r}")


def _moe_flags(
    num_experts: int | None, top_k: int | None, granularity: float | None
) -> tuple[int, int, float]:
    """(experts, top-k, granularity) of ``--params``; experts 0 is a dense model."""
    if num_experts is None:
        for flag, value in (("--top-k", top_k), ("--granularity", granularity)):
            if value is not None:
                raise UserError(f"{flag}: only with --num-experts (an MoE)")
        return 0, 1, 1.0
    if not 1 <= num_experts <= MAX_EXPERTS:
        raise UserError(
            f"--num-experts: must be in [1, {MAX_EXPERTS}] (leave it out for a dense model), "
            f"got {num_experts}"
        )
    k = 1 if top_k is None else top_k
    if not 1 <= k <= num_experts:
        raise UserError(f"--top-k: must be between 1 and --num-experts ({num_experts}), got {k}")
    g = 1.0 if granularity is None else granularity
    _check_number("--granularity", g, low=1e-3, high=2**17, what="ratio d_ff / d_expert")
    return num_experts, k, g


def _flag(key: str) -> str:
    """An evaluator setting as the command-line flag that gives it (``width_factor`` ->
    ``--width-factor``)."""
    return "--" + key.replace("_", "-")


def _proxy_settings(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _check_proxy_flags(
    *, steps: int, max_layers: int | None, max_d_model: int | None, device: str | None
) -> None:
    """Flags whose library meaning (0 = derive / no cap) makes no sense on the command line."""
    if steps < 1:
        raise UserError(f"--steps: must be an integer >= 1, got {steps}")
    for flag, cap in (("--max-layers", max_layers), ("--max-d-model", max_d_model)):
        if cap is not None and cap < 1:
            raise UserError(f"{flag}: must be an integer >= 1 (leave it out for no cap), got {cap}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device: cuda requested but CUDA is not available; use auto or cpu")


@app.command("train-proxy")
def train_proxy_cmd(
    model: Annotated[
        str, typer.Argument(help="Reference model name, model YAML or HF config.json.")
    ],
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps.")] = 200,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="Text file or folder (repeatable).",
            show_default="the Python standard library's .py files",
        ),
    ] = None,
    width_factor: Annotated[
        float | None, typer.Option("--width-factor", help="Scale d_model, heads, d_ff, d_expert.")
    ] = None,
    depth_factor: Annotated[
        float | None, typer.Option("--depth-factor", help="Scale the layer count.")
    ] = None,
    max_layers: Annotated[
        int | None, typer.Option("--max-layers", help="Cap on layers after scaling.")
    ] = None,
    max_d_model: Annotated[
        int | None, typer.Option("--max-d-model", help="Cap on d_model after scaling.")
    ] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    lr: Annotated[float | None, typer.Option("--lr")] = None,
    eval_every: Annotated[int | None, typer.Option("--eval-every")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda")] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object (the progress bar goes to stderr)."),
    ] = False,
) -> None:
    """Really train a (scaled-down) MODEL and print its validation loss curve."""
    from rich.console import Console

    from nas.evaluators.base import EvaluationFailed, named_as
    from nas.evaluators.proxy_config import ProxyConfig
    from nas.evaluators.proxy_data import load_corpus
    from nas.evaluators.proxy_train import OUT_OF_MEMORY, ProxyResult, train_proxy

    _check_proxy_flags(steps=steps, max_layers=max_layers, max_d_model=max_d_model, device=device)
    with named_as(_flag):  # proxy_train.width_factor: ... -> --width-factor: ...
        cfg = ProxyConfig.from_settings(
            _proxy_settings(
                steps=steps,
                data=[str(p) for p in data] if data else None,
                width_factor=width_factor,
                depth_factor=depth_factor,
                max_layers=max_layers,
                max_d_model=max_d_model,
                seq_len=seq_len,
                batch_size=batch_size,
                lr=lr,
                eval_every=eval_every,
                seed=seed,
                device=device,
            )
        )
    arch = _load_model(model)
    with named_as(_flag):  # data errors before the bar
        corpus = load_corpus(cfg.data, max_bytes=cfg.max_corpus_bytes)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("val {task.fields[val]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=as_json) as bar:
        task = bar.add_task(f"training {arch.name} proxy", total=cfg.steps, val="-")

        def progress(step: int, total: int, val: float | None) -> None:
            if val is None:
                bar.update(task, completed=step)
            else:
                bar.update(task, completed=step, val=f"{val:.4f}")

        result: ProxyResult | None = None
        try:
            result = train_proxy(arch, cfg, progress=progress, corpus=corpus)
        except EvaluationFailed as exc:
            if exc.reason.startswith(OUT_OF_MEMORY):  # too large a proxy: a user mistake
                bar.remove_task(task)  # no half-drawn bar above the error line
            elif as_json:
                print_json({"model": arch.name, "failed": True, "reason": exc.reason})
                raise typer.Exit(1) from None
            else:
                typer.echo(f"failed: {exc.reason}", err=True)
                raise typer.Exit(1) from None
    if result is None:
        raise UserError(
            f"--width-factor/--seq-len/--batch-size: {OUT_OF_MEMORY} for the {arch.name} proxy "
            "on this machine; lower them"
        )
    p = result.arch
    out = {
        "model": arch.name,
        "proxy": {
            "num_layers": p.num_layers,
            "d_model": p.d_model,
            "num_heads": p.num_heads,
            "num_kv_heads": p.num_kv_heads,
            "d_ff": p.d_ff,
        },
        **result.metrics(),
        "device": result.device,
        "curve": [{"step": s, "val_loss": v} for s, v in result.curve],
    }
    if as_json:
        print_json(out)
        return
    table = Table(title=f"{arch.name} proxy: validation loss (nats/byte)")
    table.add_column("step", justify="right")
    table.add_column("val loss", justify="right")
    for s, v in result.curve:
        table.add_row(str(s), f"{v:.4f}")
    console.print(table)
    m = result.metrics()
    typer.echo(
        f"params {m['params']:.4g} (non-embedding)  tokens {m['tokens']:.4g}  "
        f"{m['tokens_per_s']:.4g} tokens/s on {result.device}  peak memory "
        f"{m['peak_memory_bytes'] / 1e6:.1f} MB  unigram entropy {m['unigram_entropy']:.3f}"
    )


@app.command("fit-law")
def fit_law_cmd(
    results: Annotated[Path, typer.Argument(help="CSV or JSON rows with params, tokens, loss.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the fitted law (YAML) here.")
    ] = None,
    holdout_fraction: Annotated[
        float, typer.Option("--holdout-fraction", help="Largest-params share held out.")
    ] = 0.25,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit L = E + A/N^alpha + B/D^beta to proxy results; report fit and held-out error."""
    from nas.evaluators.fit_law import fit_law, read_results, save_law

    check_out_file(out, example="law.yaml")
    report = fit_law(read_results(results), holdout_fraction=holdout_fraction, source=str(results))
    if out is not None:
        save_law(report, out)
    d = report.to_dict()
    if as_json:
        print_json(d)
        return
    law = report.law
    typer.echo(
        f"L = {law.E:.4g} + {law.A:.4g} / N^{law.alpha:.4f} + {law.B:.4g} / D^{law.beta:.4f}"
    )
    typer.echo(
        f"fit on {report.rows} rows: rms relative error {report.rms_rel_error:.2%}, "
        f"max {report.max_rel_error:.2%}"
    )
    if report.heldout_rows:
        typer.echo(
            f"held out {report.heldout_rows} largest rows: rms relative error "
            f"{report.heldout_rms_rel_error:.2%}"
        )
    else:
        typer.echo(
            f"held out: none (a refit needs 5 rows besides the held-out share "
            f"{holdout_fraction:g}; {report.rows} rows given)"
        )
    if out is not None:
        typer.echo(f"saved {out}")
