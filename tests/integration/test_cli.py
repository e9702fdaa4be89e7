"""The command line end to end, as a user drives it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.cli import main
from tests.conftest import write_image_folder


def run_cli(*args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_imports_nothing_heavy():
    """``--help`` answers at once because it loads no torch, Lightning or timm (its time is in benchmarks/)."""
    code = ("import sys; from cnnkit.cli import build_parser; build_parser()\n"
            "heavy = [m for m in ('torch', 'lightning', 'timm', 'sklearn', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run([sys.executable, "-m", "cnnkit.cli", "--help"], check=True, capture_output=True, text=True)
    assert "train" in done.stdout and "evaluate" in done.stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """Three classes, tiny_cnn, one epoch: a real run for the bad-input cases, made in a second."""
    base = tmp_path_factory.mktemp("quick")
    data = write_image_folder(base / "data", ["left", "right", "top"], 8)
    assert main(["-q", "train", str(data), "--model", "tiny_cnn", "--epochs", "1", "--out", str(base / "run"),
                 "--no-progress"]) == 0
    return base / "run"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    assert main(["datasets", "export", "digits", str(base / "digits")]) == 0
    code = main(["-q", "train", str(base / "digits"), "--model", "simple_cnn", "--epochs", "3", "--out",
                 str(base / "run"), "--no-progress"])
    assert code == 0
    return base / "digits", base / "run"


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_train_ends_with_a_one_screen_summary(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", ["left", "right", "top"], 12)
    code, out, _ = run_cli("train", data, "--model", "tiny_cnn", "--epochs", "2", "--out", tmp_path / "run",
                           "--no-progress", capsys=capsys)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) <= 12
    assert f"Best epoch    {config['result']['best_epoch'] + 1} of 2" in out
    assert f"loss {config['result']['best_val_loss']:.4f}  accuracy {config['result']['best_val_acc']:.4f}" in out
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert f"accuracy {test['accuracy']:.4f}" in out
    assert f"Report        {tmp_path / 'run' / 'report.html'}" in out


@pytest.mark.slow
def test_train_evaluate_predict_summary_on_digits(digits_run, capsys):
    data, run = digits_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.85 and metrics["n"] == 269  # chance is 0.1
    assert set(metrics) >= {"accuracy", "n", "classes", "per_class", "confusion_matrix"}
    assert len(metrics["confusion_matrix"]) == 10

    (run / "metrics.json").unlink()
    code, out, _ = run_cli("evaluate", run, capsys=capsys)
    assert code == 0 and f"accuracy {metrics['accuracy']:.4f}" in out and str(run / "report.html") in out
    assert (run / "report.html").exists() and (run / "figures" / "confusion_matrix.png").exists()
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]

    images = sorted((data / "3").glob("*.png"))[:2]
    code, out, _ = run_cli("predict", run, *images, "--json", capsys=capsys)
    predictions = json.loads(out)
    assert code == 0 and [p["path"] for p in predictions] == [str(i) for i in images]
    assert all(0 <= p["probability"] <= 1 and p["class"] in [str(d) for d in range(10)] for p in predictions)

    code, out, _ = run_cli("summary", run, capsys=capsys)
    assert code == 0 and "Total params" in out and "(None, 32, 16, 16)" in out


def test_summary_of_a_registered_model(capsys):
    code, out, _ = run_cli("summary", "lenet5", "--input", "1x32x32", capsys=capsys)
    assert code == 0 and "Total params: 61,706" in out and "16x16 / 4" in out


def test_datasets_and_models_listings(capsys):
    assert run_cli("datasets", "list", capsys=capsys)[1].count("\n") >= 2
    assert "lenet5" in run_cli("models", capsys=capsys)[1]


def _bad_cases(tmp: Path, run: Path) -> dict:
    data = run.parent / "data"
    empty = write_image_folder(tmp / "empty", ["a", "b"], 3)
    (empty / "c").mkdir()
    corrupt = write_image_folder(tmp / "corrupt", ["a", "b"], 3)
    (corrupt / "a" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    text = tmp / "note.png"
    text.write_text("not an image")
    other = write_image_folder(tmp / "other", ["left", "cat"], 2)
    broken = tmp / "broken_run"
    broken.mkdir()
    (broken / "config.json").write_text("{")
    no_model = tmp / "no_model"
    no_model.mkdir()
    (no_model / "config.json").write_text((run / "config.json").read_text())
    (tmp / "empty_dir").mkdir()
    big = tmp / "big.png"
    Image.new("RGB", (160, 160)).save(big)  # at scale 64: 10240 x 10240 pixels, above Pillow's limit
    shaped = tmp / "shaped_run"
    shaped.mkdir()
    (shaped / "config.json").write_text('{"model": [], "classes": "ab", "preprocessing": 3}')
    return {
        "missing data": (["train", tmp / "nowhere"], "does not exist"),
        "empty class": (["train", empty], "contains no images"),
        "single class": (["train", write_image_folder(tmp / "one", ["a"], 3)], "only one class"),
        "corrupt image": (["train", corrupt], "bad.jpg"),
        "non-image predict": (["predict", run, text], "note.png"),
        "mismatched classes": (["evaluate", run, "--data", other], "not known to the model: ['cat']"),
        "broken run": (["predict", broken, text], "config.json is broken"),
        "not a run": (["evaluate", tmp / "nowhere"], "does not exist"),
        "run without a model": (["evaluate", no_model], "model.safetensors does not exist"),
        "empty data folder": (["evaluate", run, "--data", tmp / "empty_dir"], "empty_dir"),
        "threshold out of range": (["evaluate", run, "--decision-threshold", "1.5"],
                                   "Expected --decision-threshold >= 0.0 and <= 1.0"),
        "threshold, three classes": (["evaluate", run, "--decision-threshold", "0.5"], "needs exactly two classes"),
        "compare one run": (["compare", run], "at least two runs"),
        "unknown model": (["summary", "resnet9000"], "Unknown model"),
        "existing run": (["train", data, "--out", run], "already holds a run"),
        "no epochs": (["train", data, "--epochs", "0", "--out", tmp / "r0"], "Expected --epochs >= 1"),
        "nan learning rate": (["train", data, "--lr", "nan", "--out", tmp / "r1"], "Expected --lr > 0.0"),
        "negative seed": (["train", data, "--seed", "-1", "--out", tmp / "r2"], "Expected --seed >= 0"),
        "dropout above 1": (["train", data, "--model", "simple_cnn", "--option", "dropout=2", "--out", tmp / "r3"],
                            "dropout=2"),
        "option of the wrong type": (["train", data, "--option", "filters=abc", "--out", tmp / "r4"],
                                     "filters='abc'"),
        "resume with data": (["train", data, "--resume", run], "drop DATA"),
        "nothing to resume": (["train", "--resume", run], "is finished; there is nothing to resume"),
        "no neighbours": (["similar", run, text, "-k", "0"], "Expected -k >= 1"),
        "one fold": (["baseline", data, "--method", "knn", "--folds", "1", "--out", tmp / "b"], "Expected --folds"),
        "negative stride": (["scan", run, text, "--out", tmp / "s", "--stride", "-4"], "Expected --stride >= 1"),
        "no tile": (["scan", run, text, "--out", tmp / "s", "--tile", "0"], "Expected --tile >= 1"),
        "negative scan threshold": (["scan", run, text, "--out", tmp / "s", "--detection-threshold", "-1"],
                                    "Expected --detection-threshold >= 0.0"),
        "scale out of range": (["scan", run, data / "left" / "left_000.png", "--out", tmp / "s", "--scale", "5000"],
                               "Expected --scale > 0.0 and <= 64.0"),
        "scale beyond the decoder's limit": (["scan", run, big, "--out", tmp / "s", "--scale", "64"],
                                             "--scale 64.0 makes"),
        "output under a file": (["evaluate", run, "--out", text / "sub"], "Cannot write"),
        "record of the wrong shape": (["predict", shaped, text], "config.json is broken"),
        "features of an empty class": (["features", run, empty, "--out", tmp / "f.npz"], "contains no images"),
    }


def test_bad_input_gives_one_clear_line_and_exit_1(tmp_path, quick_run, capsys):
    for name, (args, message) in _bad_cases(tmp_path, quick_run).items():
        code, _, err = run_cli("-q", *args, capsys=capsys)
        assert code == 1, name
        assert message in err, (name, err)
        assert "Traceback" not in err


def test_skip_bad_trains_and_lists_the_file(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", ["left", "right"], 10)
    (data / "left" / "bad.png").write_bytes(b"\x89PNG garbage")
    code, _, err = run_cli("train", data, "--model", "tiny_cnn", "--epochs", "1", "--skip-bad", "--out",
                           tmp_path / "run", "--no-progress", capsys=capsys)
    assert code == 0 and "bad.png" in err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["skipped"] == ["left/bad.png"]


@pytest.mark.slow
def test_demo_as_the_readme_runs_it(tmp_path, capsys):
    """The README's first command: wafers, vgg_small, default settings (its time is measured in benchmarks/)."""
    code, out, _ = run_cli("demo", "--out", tmp_path / "demo", "--no-progress", capsys=capsys)
    assert code == 0
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.9 and f"accuracy {metrics['accuracy']:.4f}" in out
    assert (tmp_path / "demo" / "report.html").exists() and str(tmp_path / "demo" / "report.html") in out


def test_a_run_with_its_data_inside_can_be_moved(tmp_path, capsys):
    """demo keeps its dataset inside the run folder; the split then points inside it and survives a move."""
    run = tmp_path / "run"
    write_image_folder(run / "dataset", ["left", "right"], 10)
    assert main(["-q", "train", str(run / "dataset"), "--model", "tiny_cnn", "--epochs", "1", "--out", str(run),
                 "--no-progress"]) == 0
    assert json.loads((run / "split.json").read_text())["root"] == "dataset"
    moved = run.rename(tmp_path / "moved")
    code, out, err = run_cli("evaluate", moved, capsys=capsys)
    assert code == 0 and "balanced accuracy" in out, err


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_presplit_without_test_folder_says_there_is_no_test_split(tmp_path, capsys):
    write_image_folder(tmp_path / "d" / "train", ["left", "right"], 10)
    write_image_folder(tmp_path / "d" / "val", ["left", "right"], 4, seed=1)
    code, out, _ = run_cli("train", tmp_path / "d", "--model", "tiny_cnn", "--epochs", "1", "--out",
                           tmp_path / "run", "--no-progress", "--val-folder", "validation", capsys=capsys)
    assert code == 0 and "No test split" in out  # val/ chose the weights, as asked
    split = json.loads((tmp_path / "run" / "split.json").read_text())["splits"]
    assert len(split["val"]) == 8 and split["test"] == []  # the given val/ is used as it is
    code, _, err = run_cli("evaluate", tmp_path / "run", capsys=capsys)
    assert code == 1 and "--data" in err
    # The natural answer, val/, chose the best epoch: it is refused, not scored as if it were new.
    code, out, err = run_cli("evaluate", tmp_path / "run", "--data", tmp_path / "d" / "val", capsys=capsys)
    assert code == 1 and "Every image of" in err and "validate (8)" in err and "--include-seen" in err
    write_image_folder(tmp_path / "new", ["left", "right"], 5, seed=9)
    code, out, _ = run_cli("evaluate", tmp_path / "run", "--data", tmp_path / "new", capsys=capsys)
    assert code == 0 and "n=10" in out


@pytest.mark.slow  # 3 s: the quick suite keeps other augmentation tests
def test_augmented_training_records_what_it_did_and_tta_is_reported(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", ["left", "right", "top"], 6)
    write_image_folder(tmp_path / "d", ["top"], 30, seed=4)  # top: 30 images, the others 6
    run = tmp_path / "run"
    code, _, err = run_cli("train", data, "--model", "tiny_cnn", "--epochs", "2", "--augment", "rotate=10,flip",
                           "--cutmix", "1.0", "--balance", "oversample", "--out", run, "--no-progress",
                           capsys=capsys)
    assert code == 0 and "imbalanced" in err
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["augment"] == "flip,rotate=10" and config["training"]["cutmix"] == 1.0
    assert config["balance"]["mode"] == "oversample"
    assert len(set(config["balance"]["draws_per_class_per_epoch"].values())) == 1

    code, out, _ = run_cli("evaluate", run, "--tta", "3", capsys=capsys)
    metrics = json.loads((run / "metrics.json").read_text())
    assert code == 0 and metrics["tta"]["n"] == 3 and "With TTA x3" in out
    assert "Test-time augmentation: 3 versions" in (run / "report.html").read_text()
    assert "flip,rotate=10" in (run / "report.html").read_text()

    code, out, _ = run_cli("predict", run, data / "left", "--tta", "4", "--json", capsys=capsys)
    assert code == 0 and len(json.loads(out)) == 6

    code, out, _ = run_cli("augment-preview", data, "--augment", "flip,rotate=30", "--per-class", "2", "--copies",
                           "3", "--out", tmp_path / "grid.png", capsys=capsys)
    from PIL import Image

    grid = Image.open(tmp_path / "grid.png")
    assert code == 0 and grid.width > 3 * 100 and grid.height > grid.width  # 6 rows of 4 images


def test_bad_augmentation_options_fail_cleanly(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", ["left", "right"], 4)
    for args, message in ((["train", data, "--augment", "spin"], "Unknown augmentation 'spin'"),
                          (["train", data, "--mixup", "-1"], "Expected --mixup >= 0"),
                          (["augment-preview", data, "--augment", "none"], "non-empty --augment spec")):
        code, _, err = run_cli(*args, "--out", tmp_path / "x", capsys=capsys)
        assert code == 1 and message in err, err


@pytest.mark.slow
def test_demo_on_aerial_trains_a_patch_classifier_and_scans_a_scene(tmp_path, capsys):
    code, out, _ = run_cli("-q", "demo", "--dataset", "aerial", "--out", tmp_path / "demo", "--epochs", "20",
                           "--no-progress", capsys=capsys)
    config = json.loads((tmp_path / "demo" / "config.json").read_text())
    assert code == 0 and config["model"]["name"] == "patch_cnn" and config["training"]["augment"] == "flip=hv,rotate=180"
    scan = json.loads((tmp_path / "demo" / "scan-scene_0" / "scan.json").read_text())
    assert scan["exact"] == (scan["precision"] == "32") and "counts against the dots" in out  # patch_cnn: exact
    # in float32; where the CPU has native bfloat16 the scan runs in it by default
    dots = json.loads((tmp_path / "demo" / "scan-scene_0" / "dots.json").read_text())
    assert sum(r["dots"] for r in dots.values()) > 5 and all(r["recall"] >= 0.5 for r in dots.values())


def test_library_warnings_name_flags_on_the_command_line(tmp_path, quick_run, capsys):
    code, _, err = run_cli("evaluate", quick_run, "--data", quick_run.parent / "data", "--out", tmp_path / "e",
                           capsys=capsys)  # its training and validation images among them: left out, with a warning
    assert code == 0 and "(set --include-seen to keep them)" in err and "`include_seen`" not in err, err


def test_the_summary_says_when_fine_tuning_did_not_beat_the_head(capsys):
    from cnnkit.cli.train import print_summary
    from cnnkit.config import TrainConfig
    from cnnkit.data.preprocess import Preprocessing
    from cnnkit.run import ModelSpec, RunRecord, TrainedRun, TrainingResult
    from cnnkit.run.record import PhaseRecord

    from cnnkit.run.results import SolverResult

    solver = SolverResult.from_dict({"method": "lbfgs", "C": 0.01, "iterations": 20, "converged": True,
                                     "fitted_on": "train", "grid": [{}] * 11})
    result = TrainingResult(best_epoch=0, best_val_loss=0.2, best_val_acc=0.9, epochs_run=5,
                            phases=(PhaseRecord("head", 1, 10, solver=solver), PhaseRecord("finetune", 4, 99, 1e-4)))
    record = RunRecord(ModelSpec("efficientnet_lite0", 2, 3), ("a", "b"),
                       Preprocessing((224, 224), 3, (0.5,) * 3, (0.5,) * 3),
                       training=TrainConfig(model="efficientnet_lite0", pretrained=True, strategy="finetune"),
                       status="finished", result=result)
    print_summary(TrainedRun(Path("run"), record), None)
    out = capsys.readouterr().out
    assert "fitted to the optimum (L-BFGS, C=0.01" in out and "the head's weights are kept" in out


@pytest.mark.slow  # a subprocess trains for several epochs
def test_training_into_a_log_writes_one_plain_line_per_epoch(tmp_path):
    """stderr redirected to a file (a log, CI): no bars redrawn with carriage returns or escape codes, one line per
    epoch; stdout carries only the result summary."""
    data = write_image_folder(tmp_path / "data", ["left", "right", "top"], 10)
    raw = subprocess.run([sys.executable, "-m", "cnnkit.cli", "train", str(data), "--model", "tiny_cnn", "--epochs",
                          "4", "--out", str(tmp_path / "run")], capture_output=True, timeout=300)
    assert raw.returncode == 0, raw.stderr
    for stream in (raw.stdout, raw.stderr):  # bytes: text mode would turn a carriage return into a newline
        assert b"\r" not in stream and b"\x1b" not in stream
    done = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
    epochs = [line for line in done.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == [f"epoch {i}/4" for i in range(1, 5)]
    assert all("val_loss" in line for line in epochs) and len(done.stderr) < 2000
    assert "Best epoch" in done.stdout and "epoch 1/4" not in done.stdout
    quiet = subprocess.run([sys.executable, "-m", "cnnkit.cli", "-q", "train", str(data), "--model", "tiny_cnn",
                            "--epochs", "2", "--out", str(tmp_path / "quiet")], capture_output=True, text=True,
                           timeout=300)
    assert quiet.returncode == 0 and "epoch 1/2" not in quiet.stderr


def test_summary_of_a_transfer_run_counts_only_the_head_as_trainable(capsys):
    run = Path(__file__).resolve().parents[1] / "fixtures" / "f7c7ce8" / "transfer_test_efficientnet"
    code, out, _ = run_cli("summary", run, capsys=capsys)
    lines = dict(line.split(": ", 1) for line in out.splitlines() if line.endswith(tuple("0123456789")) and ": " in line)
    assert code == 0 and lines["Trainable params"] == "771"  # the linear head on 256 features, 3 classes
    assert int(lines["Non-trainable params"].replace(",", "")) > 90_000


def test_every_model_is_described_in_one_whole_sentence(capsys):
    code, out, _ = run_cli("models", capsys=capsys)
    descriptions = [line[14:] for line in out.splitlines() if line[:1].isalpha() and line[13:14] == " "
                    and not line.startswith(("Any", "Other"))]
    assert code == 0 and descriptions and all(d.endswith(".") and len(d) <= 110 for d in descriptions)
