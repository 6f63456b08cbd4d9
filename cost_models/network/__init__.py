"""The network as one algorithm: how a parallel group maps onto a system's interconnect tiers
(:mod:`~cost_models.network.topology`) and the time of each collective over those tiers
(:mod:`~cost_models.network.collectives`). Used by the training and inference models alike."""

from __future__ import annotations

from cost_models.network.collectives import (
    CollectiveError,
    CollectiveResult,
    bus_bandwidth_factor,
    collective,
    collective_time_s,
)

__all__ = [
    "CollectiveError",
    "CollectiveResult",
    "bus_bandwidth_factor",
    "collective",
    "collective_time_s",
]
