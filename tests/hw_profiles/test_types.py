"""Typed objects: efficiency curves interpolate in log(size); built objects validate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hw_profiles import EfficiencyCurve, ProfileError, Tier, load_system


def test_curve_interpolates_in_log_size_and_clamps() -> None:
    curve = EfficiencyCurve(sizes=(1e6, 1e9, 1e12), fractions=(0.1, 0.5, 0.8))
    # geometric midpoint of 1e6 and 1e9 is halfway in log(size)
    assert curve.at(math.sqrt(1e6 * 1e9)) == pytest.approx(0.3)
    assert curve.at(1.0) == 0.1 and curve.at(1e15) == 0.8
    out = curve.at(np.array([1e3, 1e9, 1e13]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [0.1, 0.5, 0.8])


@pytest.mark.parametrize(
    ("sizes", "fractions", "message"),
    [
        ((1e6, 1e6), (0.1, 0.2), "increasing"),
        ((1e6,), (0.1, 0.2), "same non-zero length"),
        ((1e6, 1e9), (0.1, 1.5), r"\(0, 1\]"),
    ],
)
def test_curve_rejects_bad_points(
    sizes: tuple[float, ...], fractions: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ProfileError, match=message):
        EfficiencyCurve(sizes=sizes, fractions=fractions)


def test_tier_and_system_validate_when_built_in_code() -> None:
    with pytest.raises(ProfileError, match="unknown topology 'mesh'"):
        Tier(
            name="x",
            group_size=8,
            bandwidth_bytes_per_s=1e9,
            latency_s=0.0,
            efficiency=0.5,
            topology="mesh",  # type: ignore[arg-type]
        )
    with pytest.raises(ProfileError, match="torus_dims"):
        Tier(
            name="t",
            group_size=8,
            bandwidth_bytes_per_s=1e9,
            latency_s=0.0,
            efficiency=0.5,
            topology="torus2d",
            torus_dims=(2, 2),
        )
    nvl72 = load_system("gb200-nvl72")
    assert nvl72.scale_up_devices == 72 and nvl72.devices_per_node == 4
