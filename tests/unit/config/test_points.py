"""A point detector's settings (``config/points.py``): records written before an option existed still read."""

from __future__ import annotations

from cnnkit.config import PointsConfig


def test_a_points_config_written_before_augment_reads_without_it():
    data = PointsConfig(augment="saturation=0.3").to_dict()
    assert PointsConfig.from_dict(data).augment == "saturation=0.3"
    del data["augment"]
    assert PointsConfig.from_dict(data).augment is None
