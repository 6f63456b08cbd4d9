"""Calibrated efficiency parameters of the training model, and how they were fitted.

Two parameters, both properties of a device or an op class, never of a row:

* ``compute_fraction[device]``: the fraction of the profile's kernel speed a device sustains
  inside a training loop (clock throttling at the power limit under back-to-back GEMMs,
  framework gaps between kernels). Devices not in the table use the mean of the fitted ones
  of their kind (GPU, TPU, NPU), or 1.0 where none of their kind is fitted; devices in
  :data:`SAME_SILICON` use the fraction of the die they share.
* ``overlap_efficiency``: the fraction of communication that overlapping with compute
  actually hides (NCCL kernels take SMs and HBM bandwidth from the overlapped GEMMs); fitted
  within its plausible range 0.5-1.0 (:data:`cost_models.validation.train_fit.OVERLAPS`).

ZeRO-3/FSDP communication has no calibrated parameter: it follows from what the stack does
(per-layer units, prefetch, collectives per unit; :class:`cost_models.options.TrainOptions`).

Values live in ``data/train_calibration.json``; ``python -m cost_models.validation.train_fit``
(:mod:`cost_models.validation.train_fit`) fits them on the measurements and reports leave-one-out
errors on held-out rows (``docs/validation/training.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "CALIBRATION_FILE",
    "IDENTITY",
    "SAME_SILICON",
    "Calibration",
    "CalibrationArrays",
    "Efficiency",
    "calibration_device",
    "load_calibration",
]

FloatArray = npt.NDArray[np.float64]
# an efficiency or fraction: one value for all candidates, or one per candidate
Efficiency = float | FloatArray

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"

# Profiles of the same die and software stack as another profile, whose differences (power
# limit, memory) are in the profile itself: they share its sustained fraction, both when the
# model runs and when it is fitted (fitting a separate value on the few rows of one source
# would fit those rows).
SAME_SILICON: dict[str, str] = {
    "h100-sxm-96gb-500w": "h100-sxm",
    # H800 SXM5: the H100 SXM die with NVLink cut to 8 links; tensor peaks equal (NVIDIA H800
    # product brief, hw_profiles/devices/h800.yaml)
    "h800": "h100-sxm",
}


def calibration_device(device_name: str) -> str:
    """The device whose ``compute_fraction`` applies to ``device_name``."""
    return SAME_SILICON.get(device_name, device_name)


@dataclass(frozen=True, kw_only=True)
class Calibration:
    compute_fraction: dict[str, float] = field(default_factory=dict)
    overlap_efficiency: float = 1.0

    def __post_init__(self) -> None:
        for name, value in self.compute_fraction.items():
            if not 0.0 < value <= 1.5:
                raise ValueError(f"compute_fraction.{name}: must lie in (0, 1.5], got {value}")
        if not 0.0 <= self.overlap_efficiency <= 1.0:
            raise ValueError(
                f"overlap_efficiency: must lie in [0, 1], got {self.overlap_efficiency}"
            )

    def fraction(self, device_name: str, kind: str = "gpu") -> float:
        """The fitted fraction of ``device_name``; else the mean of the fitted devices of its
        ``kind`` (gpu, tpu, npu, cpu); else 1.0, the profile's speed as stated (a GPU's
        fraction holds what TPUs and NPUs may not share: boost clocks above the sustained
        ones under a power cap, per-kernel launches of eager frameworks)."""
        device_name = calibration_device(device_name)
        if device_name in self.compute_fraction:
            return self.compute_fraction[device_name]
        values = [v for d, v in self.compute_fraction.items() if _device_kind(d) == kind]
        return sum(values) / len(values) if values else 1.0


@cache
def _device_kind(name: str) -> str:
    """The kind of a shipped device profile (``gpu`` when no profile has that name)."""
    from hw_profiles.loader import list_devices, load_device

    return load_device(name).kind if name in list_devices() else "gpu"


IDENTITY = Calibration()


@dataclass(frozen=True, kw_only=True)
class CalibrationArrays:
    """Calibration values per candidate (arrays of the candidates' length), so that a fit can
    evaluate one row at every grid point in one vectorised call. Same meaning and ranges as
    :class:`Calibration`; ``compute_fraction`` applies to the one device the candidates run on."""

    compute_fraction: FloatArray
    overlap_efficiency: FloatArray

    def fraction(self, device_name: str, kind: str = "gpu") -> FloatArray:
        """The per-candidate sustained fraction (``device_name`` is the candidates' device)."""
        return self.compute_fraction


@cache
def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    """The shipped calibration; the identity when the file is absent."""
    if not path.is_file():
        return IDENTITY
    data = json.loads(path.read_text())
    return Calibration(
        compute_fraction={str(k): float(v) for k, v in data.get("compute_fraction", {}).items()},
        overlap_efficiency=float(data.get("overlap_efficiency", 1.0)),
    )
