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


def _one_line(error: CnnkitError) -> None:
    assert str(error).strip() and "\n" not in str(error).strip(), repr(str(error))


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory) -> Path:
    """A folder with a few real images (and a pipe named like one), for CSVs to point at."""
    import os

    root = tmp_path_factory.mktemp("csv-fuzz")
    (root / "img").mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 40 * i).save(root / "img" / f"{i}.png")
    os.mkfifo(root / "img" / "pipe.png")
    (root / "img" / "notes.txt").write_text("not an image")
    return root


PATHS = st.sampled_from(["img/0.png", "img/1.png", "img/2.png", "img/3.png", "./img/0.png", "img/../img/1.png",
                         "../csv-fuzz/img/2.png", "img/pipe.png", "img/notes.txt", "img", "nope.png", "", " ",
                         "img/0.png\x00", "/img/0.png", "~/x.png", "img/0.PNG", "a,b.png", '"q".png'])
LABELS = st.sampled_from(["cat", "dog", "cat|dog", "dog|cat", "cat|cat", "", "|", "Cat", "caat", "dogg", " cat ",
                          "é", "a\nb", "cat,dog"]) | st.text(max_size=6)
SPLITS = st.sampled_from(["train", "val", "test", "", "holdout", None])


@st.composite
def label_csvs(draw) -> bytes:
    """A labels CSV, mostly well formed (so that checks past the header are reached), sometimes raw bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    header = draw(st.sampled_from(["path,label", "path,label,split", "path, label", "label,path", "file,label",
                                   "\ufeffpath,label", "path"]))
    rows = draw(st.lists(st.tuples(PATHS, LABELS, SPLITS, st.booleans()), max_size=8))
    lines = [header]
    for path, label, split, extra in rows:
        fields = [path, label] + ([] if split is None else [split]) + (["more"] if extra else [])
        lines.append(",".join(f'"{f}"' if "," in f or "\n" in f else f for f in fields))
    absolute = draw(st.booleans())
    text = "\n".join(lines) + "\n"
    if absolute:  # the same rows, every real path made absolute (the CSV lives in the folder)
        text = text.replace("img/", "{root}/img/")
    return text.encode("utf-8")


@SETTINGS
@given(content=label_csvs())
def test_a_labels_csv_of_any_shape_scans_or_fails_with_one_clean_line(labelled_folder, content):
    from cnnkit.data.files import scan_folder
    from cnnkit.data.split import leaves_root

    table = labelled_folder / "labels.csv"
    table.write_bytes(content.replace(b"{root}", str(labelled_folder).encode()))
    try:
        scan = scan_folder(table)
    except CnnkitError as e:
        _one_line(e)
        return
    assert len(scan.classes) >= 2 and list(scan.classes) == sorted(scan.classes)
    paths = [p for samples in scan.samples.values() for p, _ in samples]
    assert len(paths) == len(set(paths)) and not any(leaves_root(p) for p in paths)
    assert all((scan.root / p).is_file() for p in paths)


DOT_ROWS = st.tuples(st.sampled_from(["blob", "", " blob", "a/b", ".x", "sea lion", "é"]) | st.text(max_size=4),
                     st.sampled_from(["0", "5", "39.9", "40", "-1", "nan", "inf", "-inf", "1e400", "x", "", " 7"])
                     | st.floats(allow_nan=True).map(str),
                     st.sampled_from(["0", "29", "30", "nan", "1e-300", "0x10"]) | st.integers(-5, 50).map(str))


@SETTINGS
@given(header=st.sampled_from(["class_name,row,col", "row,col,class_name", "tid,class_name,row,col",
                               "class_name,row", "\ufeffclass_name,row,col", ""]),
       rows=st.lists(DOT_ROWS, max_size=6), extra=st.booleans(), raw=st.binary(max_size=60), use_raw=st.booleans())
def test_a_dots_file_of_any_shape_reads_or_fails_with_one_clean_line(tmp_path_factory, header, rows, extra, raw,
                                                                    use_raw):
    import math

    from cnnkit.data.dots import load_dots

    path = tmp_path_factory.mktemp("dots") / "dots.csv"
    columns = header.lstrip("\ufeff").split(",")
    lines = [header] + [",".join([{"class_name": n, "row": r, "col": c}.get(k, "1") for k in columns]
                                 + (["9"] if extra else [])) for n, r, c in rows]
    path.write_bytes(raw if use_raw else ("\n".join(lines) + "\n").encode("utf-8"))
    try:
        dots = load_dots(path, 40, 30, allow_empty=True)
    except CnnkitError as e:
        _one_line(e)
        assert str(path) in str(e)
        return
    assert all(math.isfinite(r) and math.isfinite(c) and 0 <= r < 40 and 0 <= c < 30 and name
               for name, r, c in dots)


@SETTINGS
@given(record=st.dictionaries(st.sampled_from(["model", "classes", "preprocessing", "training", "task", "status",
                                               "multi_label", "points", "label_thresholds", "scan_thresholds",
                                               "recipe", "reconstruction", "record_version", "data"]), JSON,
                              max_size=6))
def test_a_whole_record_of_any_shape_reads_or_fails_with_one_clean_line(tmp_path_factory, record):
    from cnnkit.run import RunFolder

    run = Path(tmp_path_factory.mktemp("fuzz-record"))
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "f7c7ce8" / "tiny_binary"
    base = json.loads((fixture / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**base, **record}))
    try:
        loaded = RunFolder(run).read_record()
    except CnnkitError as e:
        _one_line(e)
        return
    assert all(isinstance(name, str) and name for name in loaded.classes)
