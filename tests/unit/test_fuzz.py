"""Property-based fuzz (Hypothesis, a bounded number of examples): a damaged image or a run record of any shape
ends in cnnkit's one-line error, never another exception. benchmarks/faults.py runs more examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnkit.data.decode import load_image
from cnnkit.errors import CnnkitError

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    root = tmp_path_factory.mktemp("seeds")
    Image.new("RGB", (40, 30), (90, 20, 200)).save(root / "a.jpg", quality=80)
    Image.new("L", (20, 20), 128).save(root / "b.png")
    Image.new("I;16", (20, 20), 3000).save(root / "c.png")
    return [(root / name).read_bytes() for name in ("a.jpg", "b.png", "c.png")]


@SETTINGS
@given(choice=st.integers(0, 2), flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
       cut=st.integers(0, 2000))
def test_a_damaged_image_decodes_or_fails_with_one_clear_error(tmp_path, seeds, choice, flips, cut):
    data = bytearray(seeds[choice][: max(8, cut)])
    for position, value in flips:
        if position < len(data):
            data[position] = value
    path = tmp_path / "fuzz.img"
    path.write_bytes(bytes(data))
    try:
        array = load_image(path, (16, 16), 3)
    except CnnkitError as e:
        assert "fuzz.img" in str(e) or "does not exist" in str(e)
    else:
        assert array.shape == (16, 16, 3)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                                       max_size=4), max_leaves=12)


@SETTINGS
@given(key=st.sampled_from(["model", "classes", "preprocessing", "training", "result", "decision", "data",
                            "status", "balance", "feature_cache"]), value=JSON)
def test_a_run_record_of_any_shape_loads_or_fails_with_one_clear_error(tmp_path_factory, key, value):
    from cnnkit.inference import Predictor

    run = Path(tmp_path_factory.mktemp("fuzz-run"))
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "f7c7ce8" / "tiny_binary"
    for name in ("config.json", "split.json", "model.safetensors"):
        shutil.copy(fixture / name, run / name)
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, key: value}))
    try:
        Predictor.load(run)
    except CnnkitError as e:
        assert str(e) and "\n" not in str(e).strip() or "config.json" in str(e)
