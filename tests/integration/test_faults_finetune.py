"""A fine-tuning run killed in its second phase (in a subprocess) resumes in that phase to the uninterrupted result.
A module of its own beside test_faults.py, so that pytest-xdist's workers share the long killed trainings."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.conftest import write_image_folder
from tests.integration.test_faults import (
    TIMEOUT,
    cnnkit,
    epochs_logged,
    history,
    same_weights,
    start,
    wait_for,
)


@pytest.mark.slow
def test_a_fine_tune_killed_in_its_second_phase_resumes_in_that_phase(tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = tmp_path / "backbone.safetensors"
    save_file(timm.create_model("test_efficientnet", num_classes=0).state_dict(), str(weights))
    data = write_image_folder(tmp_path / "data", ["left", "right"], 30, size=32)
    env = {**os.environ, "CNNKIT_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--model", "test_efficientnet", "--weights", weights, "--strategy", "finetune", "--epochs", "3",
            "--finetune-epochs", "6", "--finetune-lr", "0.001", "--early-stopping", "0", "--batch-size", "4",
            "--image-size", "32", "--no-progress"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cnnkit("train", data, "--out", whole, *args, env=env).returncode == 0
    process = start("train", data, "--out", killed, *args, env=env)
    wait_for(lambda: epochs_logged(killed) >= 4, process)  # the solved head, then 3 epochs of fine-tuning
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    assert 4 <= epochs_logged(killed) < 7
    resumed = cnnkit("train", "--resume", killed, env=env)
    assert resumed.returncode == 0, resumed.stderr
    phases = json.loads((killed / "config.json").read_text())["result"]["phases"]
    found = [(p["name"], p["epochs_run"]) for p in phases]
    assert found[:2] == [("head", 1), ("finetune", 6)]  # the head is solved
    assert found[2:] in ([], [("head (fallback)", 1)])  # fine-tuning kept, or the head re-solved as in `whole`
    assert found == [(p["name"], p["epochs_run"]) for p in json.loads((whole / "config.json").read_text())["result"][
        "phases"]]
    assert same_weights(whole, killed)
    assert history(whole) == history(killed)
