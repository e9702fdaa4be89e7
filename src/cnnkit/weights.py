"""Save and load network weights as safetensors: plain tensors, never a pickle, so loading runs no code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from cnnkit._io import atomic_write
from cnnkit.errors import RunError


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata or {}))


DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
MAX_WEIGHTS_BYTES = 4 << 30  # no network cnnkit trains comes near: a header declaring more is not read


def safetensors_header(path: str | Path, limit: int = MAX_WEIGHTS_BYTES) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's (dtype, shape) from a safetensors file's header, read without mapping the file: ValueError
    saying why when the header is not one, when a tensor's bytes do not lie inside the file, or when together they
    declare more than ``limit`` bytes (safetensors would map and copy them all before failing)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < length <= min(size - 8, MAX_HEADER_BYTES):
            raise ValueError(f"its header length {length} does not fit the file's {size} bytes")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    data, total, tensors = size - 8 - length, 0, {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            declared = math.prod(shape) * DTYPE_BYTES[dtype]
            valid = all(isinstance(v, int) and v >= 0 for v in (*shape, begin, end))
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"tensor {str(name)[:60]!r} has no dtype, shape and data offsets") from None
        if not valid or not 0 <= begin <= end <= data or end - begin != declared:
            raise ValueError(f"tensor {name[:60]!r} declares {declared / 1e6:,.1f} MB ({dtype} {list(shape)}) that "
                             f"do not lie in the file's {data / 1e6:,.1f} MB of data")
        total += declared
        tensors[name] = (dtype, shape)
    if total > limit:
        raise ValueError(f"its tensors declare {total / 1e9:,.1f} GB, more than the {limit / 1e9:,.1f} GB allowed")
    return tensors


def _header(path: Path, limit: int = MAX_WEIGHTS_BYTES) -> dict[str, tuple[str, tuple[int, ...]]]:
    if not path.exists():
        raise RunError(f"Weights file {path} does not exist (did training finish at least one epoch?).")
    try:
        return safetensors_header(path, limit)
    except (OSError, ValueError) as e:
        raise RunError(f"Weights file {path} is broken ({e}). Retrain, or restore the file from a copy.") from None


def read_safetensors(path: str | Path, framework: str = "torch", limit: int = MAX_WEIGHTS_BYTES) -> dict:
    """Every tensor of a safetensors file (torch tensors or numpy arrays), its header checked first
    (``safetensors_header``); RunError naming the file if it is missing or broken."""
    from safetensors import SafetensorError

    if framework == "numpy":
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    path = Path(path)
    _header(path, limit)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunError(f"Weights file {path} is broken ({e}). Retrain, or restore the file from a copy.") from None


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model``, checking every tensor name and shape; raise RunError naming the file."""
    path = Path(path)
    expected = model.state_dict()
    header = _header(path)  # names and shapes are compared before any tensor is read
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    wrong = [f"{k}: {header[k][1]} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in header and header[k][1] != tuple(v.shape)]
    if missing or extra or wrong:
        raise RunError(
            f"Weights file {path} does not match the model in its config: missing {missing[:5]}, "
            f"unexpected {extra[:5]}, wrong shapes {wrong[:5]}."
        )
    state = read_safetensors(path)
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return model
