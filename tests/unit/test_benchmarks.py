"""The benchmarks keep their measurements as data: BENCHMARKS.md is what the results files in benchmarks/results/ give,
every results file says its command, machine and date, the scripts that write results write what the committed files
hold, and a script without its outside data says where to get it and exits 0. Nothing here trains."""

from __future__ import annotations

import ast
import importlib
import json
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
sys.path.append(str(BENCHMARKS))  # the scripts import their helpers as the top-level modules _data, _results, _report

import _report  # noqa: E402
import _results  # noqa: E402

SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.stem.startswith("_"))
RESULTS = sorted(_results.RESULTS.glob("*.json"))
MISSING = "/nonexistent/benchmark-data"
WITHOUT_DATA = {  # the arguments that point each script needing outside data at a folder that is not there
    "audit_planted": ["--hymenoptera", MISSING], "audit_thumbnails": ["--hymenoptera", MISSING],
    "auto_budget": ["--data", MISSING], "features_speed": ["--data", MISSING],
    "train_vs_loop": ["--photos", MISSING],
    "flip_features": ["--data", MISSING, "--out", MISSING],
    "gradcam_sanity": ["--data", MISSING], "inference": ["--data", MISSING], "int8_variants": [MISSING],
    "latent_baselines": ["--hymenoptera", MISSING], "lr_find": ["--hymenoptera", MISSING],
    "points_flips": ["--data", MISSING], "points_speed": [MISSING, f"{MISSING}/5.jpg"],
    "scan": ["--sealions", MISSING], "scan_precision": [MISSING, f"{MISSING}/5.jpg"],
    "scratch_size": ["--hymenoptera", MISSING], "sealion_counts": ["--data", MISSING],
    "sealion_dense": ["--data", MISSING], "sealion_points": ["--data", MISSING], "dots_loop": ["--data", MISSING],
    "serve_load": ["--sealions", MISSING], "transfer": ["--data", MISSING],
    "suggest_real": ["--hymenoptera", MISSING, "--sealions", MISSING], "suggest_loop": ["--data", MISSING]}
WRITERS = {  # the scripts that write their results file (--results): its subject, table and the columns they write
    "auto_budget": ("auto_budget", "runs", "RUNS"), "core_accuracy": ("core_accuracy", "accuracy_and_time", "COLUMNS"),
    "ddp_cpu": ("ddp_cpu", "seeds", "COLUMNS"), "features_speed": ("features_speed", "speeds", "SPEEDS"),
    "gradcam_sanity": ("gradcam", "checks", "COLUMNS"), "scratch_digits": ("scratch_digits", "digits", "COLUMNS"),
    "serve_load": ("serve_load", "load", "COLUMNS"), "train_memory": ("train_memory", "runs", "COLUMNS")}


def committed(subject: str, table_id: str) -> dict:
    return next(t for t in _results.load(_results.RESULTS / f"{subject}.json")["tables"] if t["id"] == table_id)


def script(name: str):
    return importlib.import_module(name)


def test_benchmarks_md_is_what_the_results_files_give():
    assert (ROOT / "BENCHMARKS.md").read_text() == _report.render(), \
        "BENCHMARKS.md is generated: edit benchmarks/results/*.json and run python -m benchmarks report"


def test_every_results_file_has_its_command_machine_and_date():
    assert len(RESULTS) >= 20
    for path in RESULTS:
        result = _results.load(path)
        assert result["subject"] == path.stem
        assert not _results.problems(result), _results.problems(result)
        for item in [result, *result["tables"]]:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", item.get("date", result["date"])), path.name
            assert item.get("command", result["command"]) and item.get("machine", result["machine"]), path.name


def test_every_results_file_has_its_place_in_the_report_and_a_script_that_exists():
    for path in RESULTS:
        result = _results.load(path)
        assert result["subject"] in _report.ORDER, f"{path.name}: add its subject to _report.ORDER"
        assert result.get("script") is None or (ROOT / result["script"]).is_file(), path.name
        commands = [t.get("command", result["command"]) for t in [result, *result["tables"]]]
        for name in re.findall(r"benchmarks/(\w+)\.py", json.dumps(commands)):
            assert (BENCHMARKS / f"{name}.py").is_file(), f"{path.name} names benchmarks/{name}.py"


def test_results_files_are_written_as_the_scripts_write_them():
    for path in RESULTS:
        assert path.read_text() == _results.dumps(_results.load(path)) + "\n", path.name


def test_every_section_has_a_heading_the_docs_can_link_to():
    text = (ROOT / "BENCHMARKS.md").read_text()
    for result in _results.load_all():
        assert f"\n## {result['title']}\n" in text
        assert f"(#{_report.anchor(result['title'])})" in text


def test_cells_print_as_the_columns_say():
    columns = {"key": "x", "label": "x", "format": "{mean:.4f} ({min:.4f}-{max:.4f})"}
    assert _report.cell({"mean": 0.949, "min": 0.9, "max": 1.0}, columns) == "0.9490 (0.9000-1.0000)"
    assert _report.cell([0.5, 0.25], {"format": "{:.2f}"}) == "0.50 / 0.25"
    assert _report.cell(None, {"missing": "n/a"}) == "n/a"
    assert _report.cell(True, {}) == "yes"
    assert _report.cell(0, {"format": "{:.1e}"}) == "0"
    assert _report.cell({"rate": 5.6e-05, "seeds": [1e-4, 0.2]}, {"format": "{rate:g} ({seeds:g})"}) == \
        "5.6e-05 (0.0001, 0.2)"
    assert _report.cell("a | b", {}) == "a \\| b"


def test_a_new_measurement_replaces_its_scripts_tables_and_keeps_the_others(tmp_path):
    path = tmp_path / "subject.json"
    path.write_text(json.dumps({
        "subject": "subject", "title": "A subject", "measures": "what", "command": "python benchmarks/a.py --old",
        "machine": "old machine", "date": "2026-01-01", "tables": [
            {"id": "mine", "columns": [{"key": "x", "label": "x"}], "rows": [{"x": 1}]},
            {"id": "mine_too", "command": "python benchmarks/a.py --other", "columns": [{"key": "x", "label": "x"}],
             "rows": [{"x": 2}]},
            {"id": "theirs", "command": "python benchmarks/b.py", "columns": [{"key": "y", "label": "y"}],
             "rows": [{"y": 3}]}], "findings": ["it was so"]}))
    new = {"id": "mine", "columns": [{"key": "x", "label": "x"}], "rows": [{"x": 4}]}
    result = _results.record(path, "subject", [new], "python benchmarks/a.py --new", today="2026-02-02")
    assert _results.load(path) == result
    assert [t["id"] for t in result["tables"]] == ["mine", "theirs"]
    assert result["tables"][0] == new and (result["command"], result["date"]) == ("python benchmarks/a.py --new",
                                                                                 "2026-02-02")
    assert result["tables"][1]["machine"] == "old machine" and result["tables"][1]["date"] == "2026-01-01"
    assert result["findings"] == ["it was so"] and result["findings_date"] == "2026-01-01"
    assert "What it showed on 2026-01-01" in "\n".join(_report.section(result))


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_script_that_writes_results_writes_the_committed_columns(name):
    subject, table, columns = WRITERS[name]
    assert "add_option(parser" in (BENCHMARKS / f"{name}.py").read_text()  # its --results
    assert committed(subject, table)["columns"] == getattr(script(name), columns)


def test_the_learning_rate_tables_come_back_from_the_measurements_the_script_keeps(monkeypatch):
    lr_find = script("lr_find")
    monkeypatch.setattr(lr_find, "rule_rates", lambda measured: {"lowest_tenth": [0.0038, 0.0031, 0.0031],
                                                                "valley": [5.6e-05] * 3})
    accuracy = (0.593, 0.667, 0.722, 0.704, 0.444, 0.185, 0.352)
    measured = {"model": "simple_cnn", "seeds": [0, 1, 2], "sweep_seconds": 35.0,
                "accuracy": {str(rate): a for rate, a in zip(lr_find.GRID, accuracy)}}
    grid, rules = lr_find.tables({"wafers": measured}, suggestion="lowest_tenth")
    kept_grid, kept_rules = committed("lr_find", "grid"), committed("lr_find", "rules")
    assert grid["columns"] == kept_grid["columns"] and grid["rows"][0] == {**kept_grid["rows"][0], "sweep_s": 35.0}
    assert rules["rows"][0] == {"rule": "lowest_tenth (the suggestion)", "wafers": kept_rules["rows"][0]["wafers"],
                                "median_lands": {"n": 1, "of": 1}, "single_lands": {"n": 3, "of": 3}}
    assert rules["rows"][1]["wafers"]["lands"] is False
    assert [c for c in rules["columns"] if c["key"] != "wafers"] == \
        [c for c in kept_rules["columns"] if c["key"] not in ("wafers", "hymenoptera", "digits")]
    assert rules["columns"][1] == kept_rules["columns"][1]


def test_ddp_and_memory_tables_come_back_from_the_rows_the_scripts_measure():
    ddp = committed("ddp_cpu", "seeds")
    rows = [{"seed": r["seed"], "devices": d, "test_accuracy": r[f"accuracy_{d}"], "split": "same",
             "best_val_loss": r["val_loss"][key], "wall_s": r["wall_s"][key]}
            for r in ddp["rows"] for d, key in ((1, "one"), (2, "two"))]
    assert script("ddp_cpu").tables(rows) == [{k: ddp[k] for k in ("id", "columns", "rows")}]
    load, kinds = committed("serve_load", "load"), committed("serve_load", "by_kind")
    row = load["rows"][0]
    measured = {**{k: v for k, v in row.items() if k != "rss_mb"},
                **{f"rss_mb_{k}": v for k, v in row["rss_mb"].items()}, "kinds": kinds["rows"]}
    assert script("serve_load").tables(measured) == [{k: t[k] for k in ("id", "columns", "rows")}
                                                     for t in (load, kinds)]


def test_every_script_says_what_data_it_needs():
    for path in SCRIPTS:
        doc = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split())
        assert doc and "Data" in doc, f"{path.name}: its docstring says nothing of its data"
        if path.stem in WITHOUT_DATA:
            assert "https://" in doc and "exits 0" in doc, f"{path.name}: say where to get the data, and that it skips"


def test_every_script_that_reads_outside_data_checks_it_first():
    for path in SCRIPTS:
        source = path.read_text()
        reads = "shared/data" in source.split('"""', 2)[-1] or re.search(r"from _data import", source)
        assert bool(reads) == (path.stem in WITHOUT_DATA), path.name


@pytest.mark.parametrize("name", sorted(WITHOUT_DATA))
def test_a_script_without_its_data_says_where_to_get_it_and_exits_0(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / f"{name}.py"), *WITHOUT_DATA[name]])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    try:
        runpy.run_path(str(BENCHMARKS / f"{name}.py"), run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(lines) == 1 and lines[0].startswith("skipped: ") and MISSING in lines[0], lines
    assert "https://" in lines[0] or "make it with python benchmarks/" in lines[0]


def test_the_runner_lists_reports_and_runs_a_script(capfd, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the runner puts benchmarks/ first, as `python -m` does
    runner = importlib.import_module("benchmarks.__main__")
    assert runner.main([]) == 0
    listing = capfd.readouterr().out
    assert all(f"\n{path.stem} " in listing for path in SCRIPTS)
    assert runner.main(["report", "--check"]) == 0
    assert runner.main(["no_such_benchmark"]) == 2
    capfd.readouterr()
    assert runner.main(["auto_budget", "--data", MISSING]) == 0  # a subject's script, in its own process
    assert capfd.readouterr().out.startswith(f"skipped: {MISSING} not found")
