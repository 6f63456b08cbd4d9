"""Golden test: the training model against published measurements (cost_models/validation/data/
train_measurements.csv, rows copied from the project's reference data with their source keys:
NAR21 Tables 1-2, KOR22 Tables 3/5 and Figure 1, Megatron-LM README, torchtitan, DGXC,
Megatron-Bridge, NeMo AutoModel, MosaicML llm-foundry)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cost_models.train.calibration import CALIBRATION_FILE, load_calibration
from cost_models.validation.train import (
    DATA_FILE,
    load_train_measurements,
    measured_tokens_per_s_per_device,
    measurement_arch,
    summarize,
    validate_training_rows,
)
from cost_models.validation.train_fit import (
    OVERLAPS,
    error_table,
    fit,
    fitted_rows,
    leave_one_source_out,
)
from nas.cli import app

# held-out sources added for issue 14 (docs/validation/training.md, "New held-out sources")
NEW_SOURCES = {"NEMO", "NEMOTRON15", "MTNLG", "DSV3", "LLAMA3", "PALM", "MAXTEXT"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    return validate_training_rows()


def test_rows_keep_their_source_keys() -> None:
    ms = load_train_measurements()
    ids = {m.id for m in ms}
    assert {"M01", "M17", "K01", "K08", "H01", "TT1", "D1", "MB3", "AM4", "MP1", "MP3"} <= ids
    assert all(
        m.source
        in {"NAR21", "KOR22", "MEGREADME", "TTITAN", "DGXC", "MBRIDGE", "AUTOMODEL", "MPT"}
        | NEW_SOURCES
        for m in ms
    )
    assert all(m.row["interpretation"] for m in ms)


def test_nar21_flop_convention() -> None:
    # NAR21 eq. 3 per token: 96 l h^2 (1 + s/6h + V/16lh); M01 = 137 TFLOP/s per GPU
    m = next(m for m in load_train_measurements() if m.id == "M01")
    arch = measurement_arch(m)
    per_token = 96 * 24 * 2304**2 * (1 + 2048 / (6 * 2304) + 51200 / (16 * 24 * 2304))
    assert measured_tokens_per_s_per_device(m, arch) == pytest.approx(137e12 / per_token)


def test_throughput_accuracy(rows: list[dict[str, object]]) -> None:
    tput = [r for r in rows if r["metric"] == "tokens/s per device"]
    s = summarize(tput)  # type: ignore[arg-type]
    assert s["rows"] >= 30
    assert s["median_abs_error"] <= 0.10  # issue target: median <= 10%
    # every fitted row within the issue's 35%, DeepSpeed 0.3.15's ZeRO-3 at 384/768 A100 (NAR21
    # Table 2, M17: +9% / +26%) included since its stack states the per-rank copies
    assert s["worst_abs_error"] <= 0.35, s
    # Megatron-LM rows on A100 (NAR21 PTD-P, KOR22): every one within 20%
    megatron = [
        r
        for r in tput
        if str(r["source"]).split()[0] in ("NAR21", "KOR22") and not str(r["id"]).startswith("M17")
    ]
    assert max(abs(float(r["error"])) for r in megatron) <= 0.20  # type: ignore[arg-type]


def test_deepspeed_2021_zero3_loses_speed_per_device_when_the_gpus_double(
    rows: list[dict[str, object]],
) -> None:
    """NAR21 Table 2: ZeRO-3 at a fixed global batch of 1,536 drops from 144 to 88 TFLOP/s per
    GPU from 384 to 768 A100. Per-tensor gathers that wait for the compute (DeepSpeed 0.3.15,
    the ``deepspeed-2021`` stack), each copying every rank's shard with its own kernel, make
    the per-step communication a larger share as the micro-batch halves and the ranks double;
    a prefetching per-layer ZeRO-3 (the ``deepspeed`` stack) hid it (predicted -4%), and
    without the per-rank copies the model predicted -18% (measured -39%)."""
    by_id = {str(r["id"]): r for r in rows}
    small, large = by_id["M17"], by_id["M17 (768 GPUs)"]
    assert small["stack"] == large["stack"] == "deepspeed-2021"
    measured = float(large["measured"]) / float(small["measured"])  # type: ignore[arg-type]
    predicted = float(large["predicted"]) / float(small["predicted"])  # type: ignore[arg-type]
    assert measured < 0.65
    assert predicted < 0.75  # -30%: most of the loss, still short of the measured one


def test_devices_without_a_fitted_fraction_take_their_kind_s_mean_or_none() -> None:
    """A GPU without rows takes the fitted GPUs' mean; a TPU (fixed clock, one compiled
    program per step) does not inherit the GPUs' derate and runs at its profile's speed."""
    cal = load_calibration()
    gpus = np.mean(list(cal.compute_fraction.values()))
    assert cal.fraction("b200", "gpu") == pytest.approx(gpus)
    assert cal.fraction("tpu-v5e", "tpu") == 1.0
    assert cal.fraction("h800", "gpu") == cal.fraction("h100-sxm", "gpu")  # same silicon


def test_tpu_rows_of_two_publications_are_held_out_within_30_percent(
    rows: list[dict[str, object]],
) -> None:
    """MaxText's TPU v5e and v5p tables (16B-1024B, 1-32 slices over the data-centre network)
    and PaLM 540B on two TPU v4 pods: never fitted."""
    tpu = [r for r in rows if str(r["id"]).startswith(("MX", "PALM-"))]
    assert len(tpu) == 41
    errors = [abs(float(r["error"])) for r in tpu]  # type: ignore[arg-type]
    assert max(errors) <= 0.30
    assert float(np.median(errors)) <= 0.12


def test_torch_compile_speedup_has_the_measured_sign(rows: list[dict[str, object]]) -> None:
    """torchtitan's eager and torch.compile rows differ only in element-wise fusion: the
    model must predict the compiled run faster, by a ratio near the measured one."""
    by_id = {str(r["id"]): r for r in rows}
    for eager, compiled in (("TT1", "TT1c"), ("TT4", "TT4c")):
        measured = float(by_id[compiled]["measured"]) / float(by_id[eager]["measured"])  # type: ignore[arg-type]
        predicted = float(by_id[compiled]["predicted"]) / float(by_id[eager]["predicted"])  # type: ignore[arg-type]
        assert predicted > 1.0
        assert predicted == pytest.approx(measured, rel=0.15)


def test_activation_memory_rows(rows: list[dict[str, object]]) -> None:
    mem = [r for r in rows if r["metric"] == "activation memory"]
    assert len(mem) == 4
    assert max(abs(float(r["error"])) for r in mem) <= 0.05  # type: ignore[arg-type]


def test_peak_memory_rows_are_held_out_and_compared_whole(rows: list[dict[str, object]]) -> None:
    """torchtitan's reported peaks (allocator reserved memory) against the whole memory per
    device: reported as their own group, never part of the KOR22 activation rows."""
    peaks = [r for r in rows if r["metric"] == "peak memory (held out)"]
    assert len(peaks) == 16
    assert all(str(r["id"]).endswith("(peak memory)") for r in peaks)


def test_calibration_is_per_device_and_in_range() -> None:
    data = json.loads(CALIBRATION_FILE.read_text())
    cal = load_calibration()
    assert set(cal.compute_fraction) == {"a100-80gb", "h100-sxm"}
    assert all(0.5 <= v <= 1.1 for v in cal.compute_fraction.values())
    assert 0.0 <= cal.overlap_efficiency <= 1.0
    assert cal.fraction("some-new-device") == pytest.approx(
        np.mean(list(cal.compute_fraction.values()))
    )
    assert data["fitted_on"]


def test_source_held_out_fits_stay_physical() -> None:
    """Refitted without any one source, the overlap efficiency stays in its plausible range
    (0.5-1.0, train_fit.OVERLAPS) and MEGREADME's H100 rows, held out, stay within 35%: the
    fit without them once chose overlap 0 with an H100 fraction of 0.95 (H01 +39.8%)."""
    rows = fitted_rows()
    table = error_table(rows)
    sources = [p.measurement.source for p in rows]
    assert min(OVERLAPS) == 0.5
    for source in sorted(set(sources)):
        held = np.array([s == source for s in sources])
        cal, _ = fit(table, ~held)
        assert 0.5 <= cal.overlap_efficiency <= 1.0
        assert all(0.55 <= v <= 1.05 for v in cal.compute_fraction.values())
    loso = leave_one_source_out(table, sources)
    megreadme = [e for e, s in zip(loso, sources, strict=True) if s == "MEGREADME"]
    assert len(megreadme) == 5
    assert max(abs(e) for e in megreadme) < 0.35


def test_validate_cli_prints_rows_and_summary() -> None:
    result = CliRunner().invoke(app, ["validate", "--kind", "train", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["id"] for r in data["rows"]} >= {"M01", "D1", "MB3"}
    assert all(r["kind"] == "train" for r in data["rows"])
    assert "train tokens/s per device" in data["summary"]


def test_held_out_rows_are_reported_and_never_fitted(rows: list[dict[str, object]]) -> None:
    """Rows marked holdout (torchtitan on a profile with an estimated peak) are predicted
    with the shipped calibration but were not in the rows it was fitted on."""
    held = [r for r in rows if r["metric"] == "tokens/s per device (held out)"]
    assert len(held) >= 12
    fitted_on = set(json.loads(CALIBRATION_FILE.read_text())["fitted_on"])
    assert not fitted_on & {str(r["id"]) for r in held}
    assert {"MB3", "D1", "M17"} <= fitted_on
    # the held-out set covers FP8, context, tensor and pipeline parallelism
    plans = " ".join(str(r["plan"]) for r in held)
    assert all(p in plans for p in ("cp8", "tp8", "pp8", "vpp"))


def test_llama3_405b_rows_are_estimated_under_meta_s_stack(rows: list[dict[str, object]]) -> None:
    """Llama 3 405B (arXiv 2407.21783 Table 4): held out, under the stack and hardware the paper
    states, with FSDP that keeps the weights after forward (zero 3 under pp) and no
    activation checkpointing at 8K (section 3.3.2); no longer in the refused file."""
    llama = [r for r in rows if str(r["id"]).startswith("L3-")]
    assert [r["id"] for r in llama] == ["L3-1", "L3-2", "L3-3"]
    assert all(r["stack"] == "llama3-meta" for r in llama)
    assert all(str(r["hardware"]).endswith("x grand-teton-h100-80gb") for r in llama)
    assert all(r["metric"] == "tokens/s per device (held out)" for r in llama)
    plans = [str(r["plan"]) for r in llama]
    assert all("tp8 pp16" in p and " z3 " in p for p in plans)
    assert plans[0].endswith("none sp") and plans[1].endswith("none sp") and "cp16" in plans[2]
    refused = load_train_measurements(DATA_FILE.parent / "train_measurements_refused.csv")
    assert not [m for m in refused if m.id.startswith("L3-")]


def test_validate_names_the_refused_rows() -> None:
    """``nas validate`` says which rows get no estimate (none today), text and JSON."""
    import json

    from typer.testing import CliRunner

    text = CliRunner().invoke(app, ["validate", "--kind", "inference"])
    assert text.exit_code == 0, text.output
    assert "Rows refused (no estimate): none (listed in inference_measurements_refused.csv)" in (
        text.output.replace("\n", " ")
    )
    data = json.loads(CliRunner().invoke(app, ["validate", "--kind", "train", "--json"]).output)
    assert data["refused"] == {"train": []}


# Published runs whose stated plan the model still says does not fit (docs/validation.md,
# "Memory of published runs"): the list may shrink, never grow.
KNOWN_UNFIT = {"AM4", "DSV3-1", "L3-1", "L3-2"}


def test_validate_names_the_published_runs_the_model_calls_out_of_memory() -> None:
    data = json.loads(CliRunner().invoke(app, ["validate", "--kind", "train", "--json"]).output)
    unfit = set(data["unfit"])
    assert unfit <= KNOWN_UNFIT, sorted(unfit - KNOWN_UNFIT)
    assert not any(i.startswith("MX") for i in unfit)  # every MaxText TPU run fits
    rows = {r["id"]: r for r in data["rows"]}
    assert all(rows[i]["fits"] is False for i in unfit)
    assert rows["K09 (none)"]["fits"] is False and "K09 (none)" not in unfit  # a memory row
