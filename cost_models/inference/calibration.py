"""The calibrated parameter of the inference model (fitted and held-out checked by
:mod:`cost_models.validation.inference_fit`)."""

from __future__ import annotations

__all__ = ["INFERENCE_GEMM_DERATE"]

# Sustained GEMM efficiency of inference engines relative to the device profile's GEMM
# efficiency (benchmark-shaped cuBLAS GEMMs at held clocks). Vidur's per-op profiles of
# Llama-2 layers reach 68-75% of fp16 peak (published_inference.csv rows 59-61) against
# 78-80% in the profiles (0.85-0.96). Plausible range 0.6-1.0. Fitted jointly with the
# serving stacks' per-iteration overheads (cost_models/stacks/calibration.json), least mean |log
# error|, on cost_models/validation/data/inference_measurements.csv; leave-one-source-out
# error in docs/validation/inference.md (cost_models.validation.inference_fit reproduces it).
INFERENCE_GEMM_DERATE = 0.88
