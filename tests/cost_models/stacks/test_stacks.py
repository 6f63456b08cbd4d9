"""Software stacks as data (cost_models.stacks): every shipped file loads with a source per
fact, bad files and flags fail in one line naming the file or flag and the allowed values,
and a stack changes the estimate the way its facts say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cost_models.options import ServeOptions, TrainOptions
from cost_models.stacks import (
    DEFAULT_SERVE_STACK,
    DEFAULT_TRAIN_STACK,
    calibrated_step_overhead_s,
    load_stack,
    resolve_serve,
    resolve_train,
    stack_names,
)

REQUIRED_TRAIN = {"megatron-lm", "megatron-core", "torchtitan", "deepspeed", "llm-foundry",
                  "maxtext", "hai-llm", "mindspeed"}  # fmt: skip
REQUIRED_SERVE = {"fastertransformer", "tensorrt-llm", "vllm", "sglang", "deepspeed-inference",
                  "mindie"}  # fmt: skip


def test_the_issue_s_stacks_ship_with_a_source_for_every_fact() -> None:
    assert set(stack_names("train")) >= REQUIRED_TRAIN
    assert set(stack_names("serve")) >= REQUIRED_SERVE
    for name in stack_names():
        stack = load_stack(name)
        assert stack.name == name
        assert set(stack.facts) == set(stack.sources)
        assert all(len(s.strip()) > 20 for s in stack.sources.values()), name


def test_defaults_are_megatron_core_and_vllm() -> None:
    assert DEFAULT_TRAIN_STACK == "megatron-core" and DEFAULT_SERVE_STACK == "vllm"
    assert resolve_train()[0].name == "megatron-core"
    assert resolve_serve()[0].name == "vllm"


def test_stacks_differ_in_what_their_sources_say() -> None:
    core = resolve_train("megatron-core")[1]
    old = resolve_train("megatron-lm")[1]
    titan = resolve_train("torchtitan")[1]
    assert core.tp_overlap and not old.tp_overlap
    assert old.attention_kernel == "unfused"
    assert titan.fsdp_prefetch


def test_framework_overrides_single_facts_on_top() -> None:
    _, opts = resolve_train("megatron-core", {"tp_overlap": "false"})
    assert isinstance(opts, TrainOptions) and opts.tp_overlap is False
    assert opts.attention_kernel == resolve_train("megatron-core")[1].attention_kernel


def test_serving_stacks_take_the_calibrated_step_overhead_unless_overridden() -> None:
    fitted = calibrated_step_overhead_s()
    assert fitted, "cost_models/stacks/calibration.json holds the fitted overheads"
    assert all(0.0 <= v <= 0.02 for v in fitted.values())  # the range of ServeOptions
    _, engine = resolve_serve("tensorrt-llm")  # its file states no overhead: the fitted one
    assert isinstance(engine, ServeOptions)
    assert engine.step_overhead_s == fitted.get("tensorrt-llm", fitted["*"]) > 0
    _, engine = resolve_serve("tensorrt-llm", {"step_overhead_s": "0.001"})
    assert engine.step_overhead_s == pytest.approx(0.001)
    # a stack file that states the fact with a source keeps it (SGLang's overlap scheduler)
    assert (
        resolve_serve("sglang")[1].step_overhead_s == load_stack("sglang").facts["step_overhead_s"]
    )


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: load_stack("nope"), "--stack: unknown stack 'nope'; allowed: deepspeed"),
        (lambda: resolve_train("vllm"), "'vllm' is a serve stack; for train use one of:"),
        (lambda: resolve_serve("torchtitan"), "'torchtitan' is a train stack; for serve use"),
        (lambda: resolve_train(None, {"warp": 9}), "--framework.warp: unknown key; allowed:"),
        (lambda: resolve_serve(None, {"step_overhead_s": 5}), "step_overhead_s"),
    ],
)
def test_bad_names_and_keys_fail_in_one_line(call: Any, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert needle in message and "\n" not in message


def _write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("name: a\nkind: train\nfacts:\n  warp: {value: 1, source: 'x'}\n",
         "facts.warp: unknown key; allowed: attention_kernel"),
        ("name: a\nkind: train\nfacts:\n  grad_bytes: {value: 3, source: 'x'}\n", "grad_bytes"),
        ("name: a\nkind: train\nfacts:\n  dp_overlap: {value: true, source: ''}\n",
         "facts.dp_overlap.source: must name where the fact comes from"),
        ("name: a\nkind: train\nfacts:\n  dp_overlap: true\n",
         "facts.dp_overlap: expected {value: ..., source: ...}"),
        ("name: a\nkind: both\n", "kind: must be one of train, serve"),
        ("name: a\nkind: serve\ncolour: red\n", "unknown key 'colour'; allowed: name, kind"),
        ("name: a\nkind: serve\nfacts:\n  host_launch_s: {value: 1.0, source: 'x'}\n",
         "host_launch_s"),
    ],
)  # fmt: skip
def test_a_bad_stack_file_names_the_file_and_the_field(
    tmp_path: Path, body: str, needle: str
) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ValueError) as err:
        load_stack(path)
    assert str(err.value).startswith(path) and needle in str(err.value)
    assert "\n" not in str(err.value)


def test_a_stack_file_by_path_is_used(tmp_path: Path) -> None:
    body = ("name: mine\nkind: train\nfacts:\n"
            "  grad_bytes: {value: 4, source: 'our launcher keeps fp32 gradients'}\n")  # fmt: skip
    stack, opts = resolve_train(_write(tmp_path, body))
    assert stack.name == "mine" and opts.grad_bytes == 4


def test_llama3_meta_states_only_what_the_llama3_paper_states() -> None:
    """Meta's Llama 3 stack (arXiv 2407.21783 section 3.3.2): FSDP prefetch, asynchronous
    gradient reduction, fp32 gradients; every other fact is the default."""
    stack = load_stack("llama3-meta")
    assert set(stack.facts) == {"fsdp_prefetch", "dp_overlap", "grad_bytes"}
    assert all("2407.21783" in s and "3.3.2" in s for s in stack.sources.values())
    _, opts = resolve_train("llama3-meta")
    default = TrainOptions()
    assert opts.fsdp_prefetch and opts.dp_overlap and opts.grad_bytes == 4
    assert (opts.tp_overlap, opts.attention_kernel, opts.elementwise) == (
        default.tp_overlap,
        default.attention_kernel,
        default.elementwise,
    )
