"""Training across processes with Lightning's DDP: two CPU processes (gloo) make one run folder, written once, with
the split and results of one process; which process writes is decided from the launchers' environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkit.training.distributed import global_rank, is_main
from tests.conftest import write_image_folder


@pytest.mark.parametrize("env, devices, rank", [
    ({}, 1, 0),
    ({"LOCAL_RANK": "1"}, 2, 1),  # a process Lightning started on this machine
    ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, 4, 4),  # the first process of the second machine
    ({"RANK": "3", "LOCAL_RANK": "1"}, 2, 3),  # torchrun
    ({"SLURM_PROCID": "5", "SLURM_NTASKS": "8"}, 4, 5),  # srun
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, 1, 0),  # a one-task SLURM job
])
def test_the_rank_comes_from_the_launcher(env, devices, rank, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert global_rank(devices) == rank and is_main(devices) == (rank == 0)


def _train(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "cnnkit.cli", "train", str(data), "--model", "tiny_cnn", "--epochs", "8",
               "--accelerator", "cpu", "--no-progress", "--out", str(out), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_processes_train_one_run_folder_like_one_process(tmp_path):
    data = write_image_folder(tmp_path / "data", ["a", "b", "c"], 20, size=16)
    one = _train(data, tmp_path / "one")
    two = _train(data, tmp_path / "two", "--devices", "2", "--data-in", "disk")
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "one", "two"]
    assert (tmp_path / "one" / "split.json").read_text() == (tmp_path / "two" / "split.json").read_text()
    record = json.loads((tmp_path / "two" / "config.json").read_text())
    assert record["status"] == "finished" and record["training"]["devices"] == 2
    rows = (tmp_path / "two" / "logs" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 8  # one writer: each epoch once
    assert not list((tmp_path / "two").rglob("*.tmp"))  # no process left a checkpoint half-placed
    assert two.stderr.count("Decoding 60 images") == 1  # the other process logs warnings only
    assert two.stdout.count("Run folder") == 1  # and prints no summary
    loss = [json.loads((tmp_path / name / "config.json").read_text())["result"]["best_val_loss"]
            for name in ("one", "two")]
    assert abs(loss[0] - loss[1]) < 0.15 * loss[0]  # the same steps (the batch is shared), other shuffles
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two")]
    assert metrics[0]["test_set"]["fingerprint"] == metrics[1]["test_set"]["fingerprint"]
    assert abs(metrics[0]["accuracy"] - metrics[1]["accuracy"]) <= 0.25


def test_oversampling_is_refused_with_several_processes(tmp_path):
    from cnnkit.errors import ConfigError
    from cnnkit.training.fit import train

    data = write_image_folder(tmp_path / "data", ["a", "b"], 4)
    with pytest.raises(ConfigError, match="oversample"):
        train(data, tmp_path / "r", model="tiny_cnn", balance="oversample", devices=2)
