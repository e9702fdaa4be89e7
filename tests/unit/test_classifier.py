"""``ImageClassifier`` as a scikit-learn user expects it: a readable repr, and the command line's rule for run
folders (an existing run is refused, named in one line; ``overwrite`` replaces it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnkit import ImageClassifier
from cnnkit.cli import main
from cnnkit.cli.options import to_flags
from cnnkit.errors import RunError
from cnnkit.run import RunFolder


class Frame:
    """The part of a pandas DataFrame that fit() reads (pandas is not a dependency of the tests)."""

    columns = ["path", "label"]

    def __init__(self, rows: list[tuple[str, str]]):
        self.rows = rows

    def to_csv(self, *args, **kwargs):  # pragma: no cover - only its presence marks a DataFrame
        raise AssertionError("fit writes the CSV itself")

    def __getitem__(self, columns):
        return self

    def itertuples(self, index: bool = True):
        return iter(self.rows)


def test_the_repr_shows_the_parameters_that_differ_from_their_defaults():
    assert repr(ImageClassifier()) == "ImageClassifier()"
    assert repr(ImageClassifier("tiny_cnn", epochs=3)) == "ImageClassifier(model='tiny_cnn', epochs=3)"
    assert repr(ImageClassifier(epochs=3, model="tiny_cnn")) == "ImageClassifier(model='tiny_cnn', epochs=3)"
    assert repr(ImageClassifier(image_size=(32, 32))) == "ImageClassifier(image_size=(32, 32))"


def test_a_long_repr_is_wrapped_under_its_parenthesis_and_reads_back():
    classifier = ImageClassifier("tiny_cnn", epochs=3, lr=0.05, batch_size=8, optimizer="sgd", augment="flip=h",
                                 model_options={"filters": (8, 16)})
    lines = repr(classifier).splitlines()
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    assert all(line.startswith(" " * len("ImageClassifier(")) for line in lines[1:])
    rebuilt = eval(repr(classifier), {"ImageClassifier": ImageClassifier})  # noqa: S307 - our own repr
    assert rebuilt.get_params() == classifier.get_params()


def test_a_parameter_whose_equality_is_no_truth_value_counts_as_changed():
    classifier = ImageClassifier("tiny_cnn").set_params(model_options=np.array([1, 2]))
    assert "model_options=array([1, 2])" in repr(classifier)


def test_the_api_refuses_an_existing_run_folder_as_the_command_line_does(pattern_data: Path, tmp_path: Path,
                                                                          monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = Path("runs") / f"{pattern_data.name}-tiny_cnn"  # the folder `cnnkit train DATA --model tiny_cnn` names
    assert ImageClassifier("tiny_cnn", epochs=1, batch_size=16).fit(pattern_data, verbose=False).run_dir_ == run
    weights = (run / "model.safetensors").read_bytes()
    with pytest.raises(RunError, match="already holds a run") as refused:
        ImageClassifier("tiny_cnn", epochs=1, batch_size=16).fit(pattern_data, verbose=False)
    assert "`overwrite`" in str(refused.value) and len(str(refused.value).splitlines()) == 1
    assert sorted(p.name for p in Path("runs").iterdir()) == [run.name]  # no runs/...-2 made quietly
    assert (run / "model.safetensors").read_bytes() == weights

    assert main(["train", str(pattern_data), "--model", "tiny_cnn", "--epochs", "1"]) == 1
    assert capsys.readouterr().err.strip() == f"cnnkit: error: {to_flags(str(refused.value))}"  # the same line

    rows = [(str(p), p.parent.name) for p in sorted(pattern_data.rglob("*.png"))]
    with pytest.raises(RunError) as refused_frame:
        ImageClassifier("tiny_cnn", epochs=1).fit(Frame(rows), run, verbose=False)
    assert str(refused_frame.value) == str(refused.value) and not (run / "labels.csv").exists()
    folder = RunFolder(run)
    folder.write_record(folder.read_record().replace(status="failed"))  # a run that did not finish: the other line
    with pytest.raises(RunError, match="did not finish") as unfinished:
        ImageClassifier("tiny_cnn", epochs=1).fit(pattern_data, run, verbose=False)
    with pytest.raises(RunError) as unfinished_frame:
        ImageClassifier("tiny_cnn", epochs=1).fit(Frame(rows), run, verbose=False)
    assert str(unfinished_frame.value) == str(unfinished.value)

    again = ImageClassifier("tiny_cnn", epochs=2, batch_size=16).fit(pattern_data, verbose=False, overwrite=True)
    assert again.run_dir_ == run and again.result_.epochs_run == 2 and again.history_["epoch"] == [1, 2]


def test_without_a_model_the_run_folder_names_the_model_chosen_from_the_data(pattern_data: Path, tmp_path: Path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    classifier = ImageClassifier(epochs=1, batch_size=16).fit(pattern_data, verbose=False)
    assert classifier.run_dir_ == Path("runs") / f"{pattern_data.name}-simple_cnn"  # small gray images: a scratch CNN
    assert classifier.model is None and repr(classifier) == "ImageClassifier(epochs=1, batch_size=16)"
