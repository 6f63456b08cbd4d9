"""Does the scaling-law ranking agree with real proxy training? Does a fitted law extrapolate?

Trains >= 20 small decoders (dense and MoE, varied width, depth, FFN ratio and GQA) for the
same number of steps on the default corpus (the stdlib .py files, byte tokens), then prints:

* Spearman rank correlation between the proxy validation losses and (a) the ``scaling_law``
  evaluator (law auto, without and with the approximate shape penalty), (b) the
  ``decoder_params`` zero-cost proxy;
* a Chinchilla-form law fitted (``nas fit-law`` code) on the smaller half of the models by
  parameter count and its error on the larger half.

All models see the same token count here, so only the parameter term of the law is tested.

Run: ``nice python bench/bench_law_vs_proxy.py [--steps 150] [--out results.jsonl]``
(several minutes on one CPU core).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nas.evaluators import get_evaluator
from nas.evaluators.fit_law import Results, fit_chinchilla, relative_errors
from nas.evaluators.proxy_config import ProxyConfig
from nas.evaluators.proxy_data import load_corpus
from nas.evaluators.proxy_train import train_proxy
from search_spaces.architecture import Architecture, MoEConfig
from search_spaces.counts import ArchBatch


def architectures() -> list[Architecture]:
    """24 small byte-level decoders spanning ~50K to ~2M parameters."""
    archs: list[Architecture] = []
    dense = [  # (layers, d_model, heads, kv_heads, d_ff)
        (1, 64, 2, 2, 128),
        (2, 64, 2, 1, 192),
        (2, 96, 3, 3, 256),
        (3, 64, 2, 2, 256),
        (2, 128, 4, 2, 352),
        (4, 64, 2, 2, 160),
        (3, 96, 3, 1, 256),
        (4, 96, 3, 3, 192),
        (2, 160, 5, 5, 448),
        (3, 128, 4, 4, 352),
        (6, 64, 2, 2, 192),
        (4, 128, 4, 2, 512),
        (3, 160, 5, 5, 320),
        (6, 96, 3, 3, 256),
        (4, 160, 5, 1, 448),
        (8, 96, 4, 2, 256),
        (5, 192, 6, 3, 512),
        (6, 128, 4, 4, 352),
        (4, 192, 6, 6, 768),
        (8, 128, 4, 2, 352),
    ]
    for i, (layers, d, h, kv, ff) in enumerate(dense):
        archs.append(
            Architecture(
                name=f"dense{i:02d}",
                num_layers=layers,
                d_model=d,
                num_heads=h,
                num_kv_heads=kv,
                d_ff=ff,
                vocab_size=256,
            )
        )
    moe = [
        (2, 96, 3, 4, 1, 256),
        (3, 128, 4, 4, 1, 352),
        (2, 128, 4, 8, 2, 176),
        (4, 96, 3, 4, 1, 256),
    ]
    for i, (layers, d, h, e, k, de) in enumerate(moe):
        archs.append(
            Architecture(
                name=f"moe{i:02d}",
                num_layers=layers,
                d_model=d,
                num_heads=h,
                num_kv_heads=h,
                d_ff=de * k,
                vocab_size=256,
                moe=MoEConfig(num_experts=e, top_k=k, d_expert=de),
            )
        )
    return archs


def _train_all(
    archs: list[Architecture],
    steps: int,
    cache: dict[tuple[str, int], dict[str, float]],
    out: Path | None,
) -> list[dict[str, float]]:
    cfg = ProxyConfig(
        steps=steps,
        seq_len=64,
        batch_size=16,
        eval_every=steps,
        lr=3e-3,
        max_corpus_bytes=4_000_000,
        seed=0,
    )
    corpus = load_corpus(cfg.data, max_bytes=cfg.max_corpus_bytes)
    rows = []
    for a in archs:
        m = cache.get((a.name, steps))
        if m is None:
            m = train_proxy(a, cfg, corpus=corpus).metrics()
            if out is not None:  # append as we go: a killed bench resumes from the file
                with out.open("a") as f:
                    f.write(json.dumps({"model": a.name, **m}) + "\n")
        rows.append(m)
        print(
            f"{a.name:8s} steps {steps:4d} params {m['params']:9.0f} total {m['params_total']:9.0f} "
            f"val loss {m['loss']:.4f}  {m['tokens_per_s']:7.0f} tok/s  {m['wall_s']:5.1f} s",
            flush=True,
        )
    return rows


def _rankings(archs: list[Architecture], rows: list[dict[str, float]]) -> None:
    proxy = np.array([r["loss"] for r in rows])
    batch = ArchBatch.from_architectures(archs)
    tokens = np.full(len(archs), rows[0]["tokens"])
    print(
        f"-- {len(archs)} models, {rows[0]['steps']:.0f} steps x 16 x 64 = {tokens[0]:.0f} tokens each, "
        f"unigram entropy {rows[0]['unigram_entropy']:.3f}"
    )
    for label, name, settings in (
        ("scaling_law auto", "scaling_law", {"law": "auto"}),
        ("scaling_law auto + shape penalty", "scaling_law", {"law": "auto", "shape_penalty": True}),
        ("decoder_params", "decoder_params", {}),
    ):
        pred = get_evaluator(name, settings).evaluate_batch(batch, tokens=tokens)["loss"]
        print(f"Spearman(proxy loss, {label}): {spearmanr(pred, proxy).statistic:.3f}")
    dense = np.array([a.moe is None for a in archs])
    pred = get_evaluator("scaling_law", {"law": "auto"}).evaluate_batch(batch, tokens=tokens)[
        "loss"
    ]
    print(
        f"Spearman(proxy loss, scaling_law auto), dense models only: "
        f"{spearmanr(pred[dense], proxy[dense]).statistic:.3f}"
    )


def _fit_small_predict_large(rows: list[dict[str, float]]) -> None:
    res = Results(
        params=np.array([r["params"] for r in rows]),
        tokens=np.array([r["tokens"] for r in rows]),
        loss=np.array([r["loss"] for r in rows]),
    )
    median = np.median(res.params)
    small = res.params < median
    law = fit_chinchilla(res.take(small))
    fit_err = relative_errors(law, res.take(small))
    held_err = relative_errors(law, res.take(~small))
    # baseline: each large model gets the best loss a small model reached at the same tokens
    naive = np.array([res.loss[small & (res.tokens == t)].min() for t in res.tokens[~small]])
    naive_err = naive / res.loss[~small] - 1.0
    print(
        f"\n-- law fitted on the {small.sum()} runs with N < {median:.3g} "
        f"(N {res.params[small].min():.3g}-{res.params[small].max():.3g}, {len(set(res.tokens))} token counts):"
    )
    print(f"L = {law.E:.3f} + {law.A:.4g}/N^{law.alpha:.3f} + {law.B:.4g}/D^{law.beta:.3f}")
    print(
        f"fit rms relative error {np.sqrt(np.mean(fit_err**2)):.2%}; held-out on the {(~small).sum()} runs "
        f"with larger N (up to {res.params.max():.3g}): rms {np.sqrt(np.mean(held_err**2)):.2%}, "
        f"max {np.max(np.abs(held_err)):.2%}, mean signed {np.mean(held_err):+.2%}"
    )
    print(f"baseline (best small run at the same tokens): rms {np.sqrt(np.mean(naive_err**2)):.2%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[150, 400])
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON lines of the runs; rows already there are reused (resume)",
    )
    args = ap.parse_args()
    cache: dict[tuple[str, int], dict[str, float]] = {}
    if args.out is not None and args.out.is_file():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            cache[(r.pop("model"), int(r["steps"]))] = r
    archs = architectures()
    t0 = time.perf_counter()
    all_rows: list[dict[str, float]] = []
    per_steps = {s: _train_all(archs, s, cache, args.out) for s in args.steps}
    print(f"\ntraining time {time.perf_counter() - t0:.0f} s")
    for rows in per_steps.values():
        _rankings(archs, rows)
        all_rows.extend(rows)
    _fit_small_predict_large(all_rows)


if __name__ == "__main__":
    main()
