"""The calibrated GEMM parameters of the inference model, read from the file that
:mod:`cost_models.validation.inference_fit` writes (``cost_models/stacks/calibration.json``,
beside the serving stacks' per-iteration overheads fitted with them). Both are fitted jointly,
least mean |log error|, on ``cost_models/validation/data/inference_measurements.csv``; the
leave-one-source-out error is in ``docs/validation/inference.md``.

* :data:`INFERENCE_GEMM_DERATE`: sustained GEMM efficiency of inference engines relative to
  the device profile's GEMM efficiency (benchmark-shaped cuBLAS GEMMs at held clocks).
  Vidur's per-op profiles of Llama-2 layers reach 68-75% of fp16 peak
  (published_inference.csv rows 59-61) against 78-80% in the profiles (0.85-0.96).
  Plausible range 0.6-1.0.
* :data:`INFERENCE_GEMM_OVERLAP`: share of the shorter of a GEMM's compute time and its
  HBM-traffic time that the kernel hides under the longer one. The roofline (Williams et al.
  2009, CACM 52(4)) is the bound with everything hidden (1.0); the Execution-Cache-Memory
  model (Treibig and Hager, PPAM 2009, LNCS 6067, arXiv 0905.0792)
  splits a kernel's time into the part that overlaps data transfer and the part that does
  not. A GEMM streams its weights through shared memory while tensor cores consume earlier
  tiles, so the hidden share is below 1 near the ridge point (prefill of a few hundred tokens,
  where compute and weight streaming take similar time) and does not matter far from it.
  Physical range 0 (time adds) to 1 (roofline).
"""

from __future__ import annotations

from cost_models.stacks import serving_calibration

__all__ = ["INFERENCE_GEMM_DERATE", "INFERENCE_GEMM_OVERLAP"]

INFERENCE_GEMM_DERATE = float(serving_calibration()["gemm_derate"])
INFERENCE_GEMM_OVERLAP = float(serving_calibration()["gemm_overlap"])
