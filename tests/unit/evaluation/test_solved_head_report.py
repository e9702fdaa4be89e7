"""A head solved by L-BFGS has no epochs: its report shows the cross-validation over the penalty grid that chose C,
and ``history_`` holds no NaN row."""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    import timm
    import torch
    from safetensors.torch import save_file

    from cnnkit import ImageClassifier
    from tests.conftest import write_image_folder

    root = tmp_path_factory.mktemp("solved")
    torch.manual_seed(0)
    weights = root / "backbone.safetensors"
    save_file(timm.create_model("test_efficientnet", num_classes=0).state_dict(), str(weights))
    data = write_image_folder(root / "data", ["a", "b", "c"], 10, size=32)
    classifier = ImageClassifier("test_efficientnet", weights=str(weights), image_size=(32, 32))
    return classifier.fit(data, root / "run", verbose=False)


def test_a_solved_head_has_no_nan_in_its_history(solved):
    assert solved.result_.phases[0].solver is not None and solved.history_ == {"epoch": []}


def test_the_report_shows_the_cross_validation_over_the_penalty_grid(solved):
    solver = solved.result_.phases[0].solver
    solved.evaluate()
    figures = {p.name for p in (solved.run_dir_ / "figures").iterdir()}
    assert "penalty_curve.png" in figures and "training_curves.png" not in figures  # no single dot
    page = (solved.run_dir_ / "report.html").read_text()
    section = page[page.index('id="training-curves"'):]
    assert "The head's penalty, chosen by cross-validation" in section and "No figure" not in section
    assert f"{len(solver.grid)} tried" in section and f"C={solver.C:.3g}" in section
    assert re.search(r'alt="cross-validated loss and accuracy per C" src="data:image/png;base64,', section)


def test_a_record_without_the_scores_of_each_c_still_reports(solved):
    from dataclasses import replace

    from cnnkit.evaluation.report import solved_head
    from cnnkit.run import RunFolder
    from cnnkit.run.results import SolverResult

    record = RunFolder(solved.run_dir_).read_record()
    assert [s.C for s in solved_head(record).grid] == [s.C for s in record.result.phases[0].solver.grid]
    older_solver = SolverResult.from_dict({**record.result.phases[0].solver.to_dict(), "grid": [{}] * 3})
    phase = replace(record.result.phases[0], solver=older_solver)
    older = replace(record, result=replace(record.result, phases=(phase,)))
    assert solved_head(older) is None  # an older record: no figure of the grid, the report as before
