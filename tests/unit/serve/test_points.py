"""Serving (``serve/``) refuses a point detector's run: its page classifies images, and a point detector classifies
none."""

from __future__ import annotations

import pytest

from cnnkit.errors import CnnkitError


def test_serving_refuses_a_point_detector_before_it_starts(untrained_detector):
    pytest.importorskip("fastapi")
    from cnnkit.serve.app import create_app

    with pytest.raises(CnnkitError, match="point detector's run"):
        create_app([untrained_detector])
