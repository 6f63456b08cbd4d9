"""The ``proxy_train`` evaluator: really train a (scaled-down) candidate and measure its loss.

AdamW (Loshchilov & Hutter 2019, betas 0.9/0.95 as in GPT-3, Brown et al. 2020, appendix
B), linear warmup and cosine decay, gradient clipping at 1.0, on the corpus of
:mod:`nas.evaluators.proxy_data`. The validation loss on a fixed set of held-out windows
(the same for every seed) is reported at checkpoints; ``report(step, val_loss)`` returning
True prunes the run (:class:`Pruned`). A NaN or exploding loss raises
:class:`EvaluationFailed` with the reason, never a loss.

Steps: ``steps`` optimizer steps; ``steps: 0`` derives them from the ``tokens`` argument,
``ceil(tokens / (batch_size * seq_len))`` capped at ``max_steps``.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.evaluators.base import EvaluationFailed, Pruned, ReportFn
from nas.evaluators.proxy_config import ProxyConfig, lr_at, scale_architecture
from nas.evaluators.proxy_data import Corpus, load_corpus, sample_windows
from nas.evaluators.proxy_model import Decoder
from nas.evaluators.workload_timer import pick_device
from search_spaces import counts
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch, FloatArray

__all__ = [
    "OUT_OF_MEMORY",
    "ProgressFn",
    "ProxyConfig",
    "ProxyResult",
    "ProxyTrainEvaluator",
    "num_steps",
    "train_proxy",
]


ProgressFn = Callable[[int, int, "float | None"], None]  # (step, steps, val loss or None)
DIVERGENCE_FACTOR = 1.5  # a loss above 1.5 x ln(vocab) (worse than uniform) has diverged


@dataclass(frozen=True, kw_only=True)
class ProxyResult:
    """One proxy run: the proxy architecture, its loss curve and measured speed/memory."""

    arch: Architecture
    loss: float  # final validation loss, nats per token (byte)
    curve: tuple[tuple[int, float], ...]  # (step, validation loss) at checkpoints
    train_loss: float
    steps: int
    tokens: float  # training tokens processed
    tokens_per_s: float
    peak_memory_bytes: float
    unigram_entropy: float
    device: str
    wall_s: float
    extra: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        b = ArchBatch.from_architectures([self.arch])
        return {
            "loss": self.loss,
            "perplexity": math.exp(min(self.loss, 700.0)),
            "train_loss": self.train_loss,
            "steps": float(self.steps),
            "tokens": self.tokens,
            "tokens_per_s": self.tokens_per_s,
            "peak_memory_bytes": self.peak_memory_bytes,
            "unigram_entropy": self.unigram_entropy,
            # N for fit-law: non-embedding parameters one token touches, of the proxy
            "params": float((counts.active_params(b) - counts.embedding_params(b))[0]),
            "params_total": float(counts.total_params(b)[0]),
            "wall_s": self.wall_s,
        }


def _device(cfg: ProxyConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise EvaluationFailed("device cuda requested but CUDA is not available")
    return pick_device(cfg.device)  # ProxyConfig checked the name: auto, cpu or cuda


def _peak_memory_bytes(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    # Process peak resident set (Linux reports KiB, macOS bytes): an upper bound for this run.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(rss if sys.platform == "darwin" else rss * 1024)


@torch.no_grad()
def _validate(model: Decoder, windows: torch.Tensor, batch_size: int) -> float:
    model.eval()
    total = 0.0
    for i in range(0, windows.shape[0], batch_size):
        chunk = windows[i : i + batch_size]
        logits = model(chunk[:, :-1])
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten()))
    model.train()
    return total / math.ceil(windows.shape[0] / batch_size)


def num_steps(cfg: ProxyConfig, tokens: float) -> int:
    """Training steps of a proxy run: ``cfg.steps``, or when it is 0 the steps that see
    ``tokens`` tokens (``batch_size * seq_len`` per step), at most ``cfg.max_steps``."""
    if cfg.steps:
        return cfg.steps
    if not math.isfinite(tokens) or tokens <= 0:
        raise EvaluationFailed("steps is 0 (derive from tokens) but tokens is not positive")
    return min(cfg.max_steps, math.ceil(tokens / (cfg.batch_size * cfg.seq_len)))


def train_proxy(
    arch: Architecture,
    cfg: ProxyConfig,
    *,
    tokens: float = 0.0,
    report: ReportFn | None = None,
    progress: ProgressFn | None = None,
    corpus: Corpus | None = None,
) -> ProxyResult:
    """Train the proxy of ``arch`` and return its validation loss curve and measurements."""
    data = corpus if corpus is not None else load_corpus(cfg.data, max_bytes=cfg.max_corpus_bytes)
    try:
        run = _Run.start(arch, cfg, steps=num_steps(cfg, tokens), data=data)
        return run.loop(report, progress)
    except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not isinstance(exc, MemoryError | torch.OutOfMemoryError) and (
            "allocate memory" not in str(exc)
        ):
            raise
        raise EvaluationFailed(
            f"{OUT_OF_MEMORY} for the proxy; lower width_factor, seq_len or batch_size"
        ) from None


OUT_OF_MEMORY = "out of memory"
"""Start of the :class:`EvaluationFailed` reason when the proxy does not fit in memory."""


@dataclass(kw_only=True)
class _Run:
    """One training run's state: model, optimizer, data streams and device."""

    proxy: Architecture
    cfg: ProxyConfig
    steps: int
    data: Corpus
    device: torch.device
    model: Decoder
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    val: torch.Tensor

    @classmethod
    def start(cls, arch: Architecture, cfg: ProxyConfig, *, steps: int, data: Corpus) -> _Run:
        proxy = scale_architecture(arch, cfg)
        device = _device(cfg)
        torch.manual_seed(cfg.seed)
        if device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        else:
            torch.cuda.reset_peak_memory_stats(device)
        model = Decoder(proxy, max_seq_len=cfg.seq_len).to(device)
        params = list(model.parameters())
        groups = [  # no weight decay on norms and biases (GPT-3 practice, Brown et al. 2020)
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
        val_rng = np.random.default_rng(12345)  # the same held-out windows for every seed
        n_val = cfg.eval_batches * cfg.batch_size
        val = sample_windows(data.val, rng=val_rng, batch_size=n_val, seq_len=cfg.seq_len)
        return cls(
            proxy=proxy,
            cfg=cfg,
            steps=steps,
            data=data,
            device=device,
            model=model,
            opt=opt,
            rng=np.random.default_rng(cfg.seed),
            val=torch.from_numpy(val).to(device),
        )

    def train_step(self, step: int) -> float:
        cfg = self.cfg
        windows = sample_windows(
            self.data.train, rng=self.rng, batch_size=cfg.batch_size, seq_len=cfg.seq_len
        )
        batch = torch.from_numpy(windows).to(self.device)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(step - 1, cfg, self.steps)
        logits = self.model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
        total = loss + cfg.aux_loss_coef * self.model.aux_loss()
        self.opt.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        value = float(loss.detach())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        limit = DIVERGENCE_FACTOR * math.log(self.proxy.vocab_size)
        if not math.isfinite(value):
            raise EvaluationFailed(f"training loss became {value} at step {step} (lr {cfg.lr:g})")
        if step > max(10, self.steps // 10) and value > limit:
            raise EvaluationFailed(
                f"diverged: training loss {value:.3f} > {limit:.3f} at step {step} (lr {cfg.lr:g})"
            )
        return value

    def loop(self, report: ReportFn | None, progress: ProgressFn | None) -> ProxyResult:
        cfg, steps = self.cfg, self.steps
        curve: list[tuple[int, float]] = []
        train_s, loss_value, start = 0.0, float("nan"), time.perf_counter()
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            loss_value = self.train_step(step)
            train_s += time.perf_counter() - t0
            val_loss = None
            if step % cfg.eval_every == 0 or step == steps:
                val_loss = _validate(self.model, self.val, cfg.batch_size)
                if not math.isfinite(val_loss):
                    raise EvaluationFailed(f"validation loss became {val_loss} at step {step}")
                curve.append((step, val_loss))
                if report is not None and report(step, val_loss):
                    raise Pruned(step, val_loss)
            if progress is not None:
                progress(step, steps, val_loss)
        tokens_done = float(steps * cfg.batch_size * cfg.seq_len)
        return ProxyResult(
            arch=self.proxy,
            loss=curve[-1][1],
            curve=tuple(curve),
            train_loss=loss_value,
            steps=steps,
            tokens=tokens_done,
            tokens_per_s=tokens_done / max(train_s, 1e-9),
            peak_memory_bytes=_peak_memory_bytes(self.device),
            unigram_entropy=self.data.unigram_entropy_nats(),
            device=self.device.type,
            wall_s=time.perf_counter() - start,
        )


@dataclass(frozen=True, kw_only=True)
class ProxyTrainEvaluator:
    """Settings: the fields of :class:`ProxyConfig` (unknown keys are rejected)."""

    config: ProxyConfig = field(default_factory=ProxyConfig)
    name: str = "proxy_train"
    vectorised: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ProxyTrainEvaluator:
        return cls(config=ProxyConfig.from_settings(settings))

    def evaluate(
        self, arch: Architecture, *, tokens: float, report: ReportFn | None = None
    ) -> dict[str, float]:
        return train_proxy(arch, self.config, tokens=tokens, report=report).metrics()

    def evaluate_batch(self, batch: ArchBatch, *, tokens: FloatArray) -> dict[str, FloatArray]:
        raise NotImplementedError("proxy_train trains one model at a time; use evaluate()")
