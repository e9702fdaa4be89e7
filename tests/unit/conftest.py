"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.dotted_photos import untrained_point_detector


@pytest.fixture(scope="session")
def untrained_detector(tmp_path_factory) -> Path:
    """A point detector's run that has learned nothing (threshold 0.3, label "animal"): made once, read by the tests
    of scan/, patches/, run/ and serve/."""
    return untrained_point_detector(tmp_path_factory.mktemp("points") / "run")
