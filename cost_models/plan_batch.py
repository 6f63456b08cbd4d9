"""Parallel plans as parallel numpy arrays, one entry per candidate (the vectorised form of
:class:`cost_models.plan.ParallelPlan`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from cost_models.plan import RECOMPUTE, ParallelPlan

__all__ = ["RECOMPUTE_CODE", "PlanBatch"]

FloatArray = npt.NDArray[np.float64]

RECOMPUTE_CODE: dict[str, int] = {
    name: i for i, name in enumerate(RECOMPUTE)
}  # none 0, selective 1, full 2


@dataclass(frozen=True, kw_only=True)
class PlanBatch:
    """Degrees and options as float64 arrays; ``sp`` is 0/1, ``recompute`` the index into
    :data:`cost_models.plan.RECOMPUTE` (none, selective, full)."""

    tp: FloatArray
    pp: FloatArray
    dp: FloatArray
    ep: FloatArray
    cp: FloatArray
    vpp: FloatArray
    sp: FloatArray
    micro_batch: FloatArray
    global_batch: FloatArray
    zero: FloatArray
    recompute: FloatArray
    dp_replicate: FloatArray  # replicas of the ZeRO-sharded state (1: shard over all of dp*cp)

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    @classmethod
    def from_plans(cls, plans: Sequence[ParallelPlan]) -> PlanBatch:
        def col(get: object) -> FloatArray:
            return np.array([get(p) for p in plans], dtype=np.float64)  # type: ignore[operator]

        return cls(
            tp=col(lambda p: p.tp),
            pp=col(lambda p: p.pp),
            dp=col(lambda p: p.dp),
            ep=col(lambda p: p.ep),
            cp=col(lambda p: p.cp),
            vpp=col(lambda p: p.vpp),
            sp=col(lambda p: float(p.sequence_parallel)),
            micro_batch=col(lambda p: p.micro_batch),
            global_batch=col(lambda p: p.global_batch),
            zero=col(lambda p: p.zero),
            recompute=col(lambda p: RECOMPUTE_CODE[p.recompute]),
            dp_replicate=col(lambda p: p.dp_replicate),
        )

    def take(self, index: npt.ArrayLike) -> PlanBatch:
        return PlanBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def plan(self, i: int) -> ParallelPlan:
        """The scalar plan at index ``i``."""
        return ParallelPlan(
            tp=int(self.tp[i]),
            pp=int(self.pp[i]),
            dp=int(self.dp[i]),
            ep=int(self.ep[i]),
            cp=int(self.cp[i]),
            vpp=int(self.vpp[i]),
            sequence_parallel=bool(self.sp[i]),
            micro_batch=int(self.micro_batch[i]),
            global_batch=int(self.global_batch[i]),
            zero=int(self.zero[i]),
            recompute=RECOMPUTE[int(self.recompute[i])],  # type: ignore[arg-type]
            dp_replicate=int(self.dp_replicate[i]),
        )

    @property
    def num_microbatches(self) -> FloatArray:
        return self.global_batch / (self.micro_batch * self.dp)
