"""Physical bounds of experiment fields and command-line flags (issue 17).

Each is a judgement call with its reason next to it: a value past it is a typo or a unit
slip, not a plan, and is refused with one line when the experiment or flag is read.
"""

from __future__ import annotations

__all__ = [
    "BOOLEAN_METRICS",
    "MAX_BATCH_TOKENS",
    "MAX_BUDGET_GPU_HOURS",
    "MAX_DEGREE",
    "MAX_DEVICES",
    "MAX_KNOB_SCALE",
    "MAX_SEQ_LEN",
    "MAX_SERVE_BATCH",
    "MAX_TOKENS",
    "MIN_BUDGET_GPU_HOURS",
    "MIN_KNOB_SCALE",
    "MIN_TOKENS",
]

# Devices: the largest training clusters published hold ~1e5 accelerators; 2^20 (~1M) is
# beyond any machine that exists, so more is a typo.
MAX_DEVICES = 2**20
# Sequence lengths: the longest published context windows are ~1e7 tokens (Llama 4 Scout);
# 2^24 (16.8M) is the bound the issue sets.
MAX_SEQ_LEN = 2**24
# Tokens: below 1e6 tokens (a few batches) no scaling law or proxy run says anything; above
# 1e16 is ~300x the largest published pre-training corpora (~3.6e13, Qwen3), not a plan.
MIN_TOKENS = 1e6
MAX_TOKENS = 1e16
# A GPU-hour budget: under 0.01 GPU-hours (36 GPU-seconds) nothing trains; 1e12 GPU-hours
# is ~1e4 years of every accelerator ever built (the "budget < 1e12").
MIN_BUDGET_GPU_HOURS = 0.01
MAX_BUDGET_GPU_HOURS = 1e12
# Hardware co-design scale factors: a 1000x faster or larger part is not the same system,
# nor is a 1000x slower or smaller one (1e-300 overflowed the step time to 1e301 s).
MAX_KNOB_SCALE = 1e3
MIN_KNOB_SCALE = 1e-3
# One parallel degree or micro-batch is at most the device bound above.
MAX_DEGREE = MAX_DEVICES
# Sequences of one serving batch: 2^20 concurrent requests is beyond any server.
MAX_SERVE_BATCH = 2**20
# A global batch of 2^34 tokens (1.7e10) is ~270x the largest published (~6.3e7, DeepSeek-V3).
MAX_BATCH_TOKENS = 2**34
# Metrics of the trial record that are booleans: a constraint on one is true/false, a
# constraint on any other metric is a comparison.
BOOLEAN_METRICS: tuple[str, ...] = ("fits", "plan_sequence_parallel")
