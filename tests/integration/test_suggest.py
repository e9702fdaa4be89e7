"""``cnnkit suggest`` as a user drives it: results on stdout, progress and warnings on stderr, bad input in one
line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main
from tests.conftest import pattern_image


def write_pool(root: Path, count: int = 12) -> Path:
    rng = np.random.default_rng(21)
    for i in range(count):
        folder = root / ("day1" if i % 2 else "day2")
        folder.mkdir(parents=True, exist_ok=True)
        pattern_image(i % 3, rng).save(folder / f"photo{i:02d}.png")
    return root


def test_suggest_writes_the_list_and_the_page_and_says_where(trained_run, tmp_path, capsys):
    pool, out = write_pool(tmp_path / "pool"), tmp_path / "to-label"
    assert main(["suggest", str(trained_run), str(pool), "--n", "5", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert f"Suggested 5 of 12 images of {pool} (hybrid)" in stdout and str(out / "to_label.csv") in stdout
    with open(out / "to_label.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and all((pool / row["path"]).is_file() for row in rows)  # relative to the pool
    assert all(row["distance"] for row in rows) and len({row["path"] for row in rows}) == 5
    page = (out / "index.html").read_text()
    assert page.count("<img ") == 5 and all(row["path"] in page for row in rows)
    assert len(list((out / "thumbs").glob("*.jpg"))) == 5


def test_bad_input_is_one_line_naming_the_flag_or_the_file(trained_run, tmp_path, capsys):
    pool = write_pool(tmp_path / "pool", 4)
    (pool / "day1" / "half.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    for argv, words in ((["--n", "0"], "--n >= 1"), ([], "half.png")):
        assert main(["suggest", str(trained_run), str(pool), "--out", str(tmp_path / "o"), *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith("cnnkit: error:") and words in err and "Traceback" not in err, err
    assert main(["suggest", str(trained_run), str(pool), "--strategy", "margin", "--skip-bad", "--out",
                 str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "half.png" in captured.err and "Suggested 4 of 4" in captured.out and "1 unreadable" in captured.out


def test_an_unknown_strategy_is_a_usage_error_listing_the_strategies(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["suggest", str(trained_run), str(tmp_path), "--strategy", "random"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "invalid choice: 'random'" in err and "'margin', 'entropy', 'kcenter'" in err
