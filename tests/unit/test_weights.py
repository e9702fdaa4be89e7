"""Weights files (safetensors) are read only after their header has been checked against the file: a header that
declares more than the file holds, or more than any network needs, is one clean line, never a mapped 6 GB."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from cnnkit.errors import ModelError, RunError
from cnnkit.weights import load_weights, read_safetensors, save_weights

SIX_GB = [1536, 1024, 1024]  # float32: 6,442 MB


def _crafted(path: Path, shape: list[int], data: bytes = b"\0" * 64, size: int | None = None) -> Path:
    """A safetensors file whose header declares one float32 tensor of ``shape`` over ``data``; ``size``: the file
    made that long (sparse: no disk is used)."""
    end = 4 * int(torch.tensor(shape).prod())
    header = json.dumps({"weight": {"dtype": "F32", "shape": shape, "data_offsets": [0, end]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    if size is not None:
        with open(path, "r+b") as f:
            f.truncate(size)
    return path


@pytest.fixture
def no_mapping(monkeypatch):
    """Fails the test if safetensors is asked to load the file at all."""
    import safetensors.numpy
    import safetensors.torch

    def refuse(*args, **kwargs):
        raise AssertionError("the file was mapped before its header was checked")

    monkeypatch.setattr(safetensors.torch, "load_file", refuse)
    monkeypatch.setattr(safetensors.numpy, "load_file", refuse)


def test_a_header_declaring_6_gb_in_a_small_file_is_refused_before_mapping(tmp_path, no_mapping):
    path = _crafted(tmp_path / "model.safetensors", SIX_GB)
    for framework in ("torch", "numpy"):
        with pytest.raises(RunError, match=r"model.safetensors is broken \(tensor 'weight' declares 6,442.5 MB "
                                           r"\(F32 \[1536, 1024, 1024\]\) that do not lie in the file's 0.0 MB") as e:
            read_safetensors(path, framework)
        assert "\n" not in str(e.value)
    with pytest.raises(RunError, match="model.safetensors is broken"):
        load_weights(torch.nn.Linear(3, 2), path)


def test_a_6_gb_file_whose_header_is_true_is_refused_by_the_limit(tmp_path, no_mapping):
    path = _crafted(tmp_path / "model.safetensors", SIX_GB, b"", size=None)
    header_length = path.stat().st_size
    with open(path, "r+b") as f:  # sparse: the 6 GB the header declares, without writing them
        f.truncate(header_length + 4 * 1536 * 1024 * 1024)
    with pytest.raises(RunError, match=r"its tensors declare 6.4 GB, more than the 4.3 GB allowed"):
        read_safetensors(path)


@pytest.mark.parametrize("content, reason", [(b"", "header length -1"), (b"\xff" * 8 + b"{}", "header length"),
                                             (struct.pack("<Q", 4) + b"\xff\xfe{}", "not JSON"),
                                             (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
                                             (struct.pack("<Q", 14) + b'{"w": {"a":1}}', "has no dtype")])
def test_a_header_that_is_no_header_is_one_clean_line(tmp_path, no_mapping, content, reason):
    (tmp_path / "model.safetensors").write_bytes(content)
    with pytest.raises(RunError, match=f"model.safetensors is broken \\(.*{reason}"):
        read_safetensors(tmp_path / "model.safetensors")


def test_weights_of_another_model_are_named_from_the_header_alone(tmp_path, no_mapping):
    path = _crafted(tmp_path / "model.safetensors", [2, 3], b"\0" * 24)
    with pytest.raises(RunError, match=r"missing \['bias'\], unexpected \['weight'\]|missing .*bias"):
        load_weights(torch.nn.Linear(3, 2), path)


def test_real_weights_still_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    save_weights(model, tmp_path / "model.safetensors")
    loaded = load_weights(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)),
                          tmp_path / "model.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_pretrained_weights_are_checked_alike(tmp_path, no_mapping):
    from cnnkit.models.pretrained import read_state_dict

    with pytest.raises(ModelError, match="could not be read .*declares 6,442.5 MB"):
        read_state_dict(_crafted(tmp_path / "backbone.safetensors", SIX_GB))
