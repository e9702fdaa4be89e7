"""Save and load network weights as safetensors: plain tensors, never a pickle, so loading runs no code."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnkit._io import atomic_write
from cnnkit.errors import RunError


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata or {}))


def read_safetensors(path: str | Path, framework: str = "torch") -> dict:
    """Every tensor of a safetensors file (torch tensors or numpy arrays); RunError naming the file if it is
    missing or broken."""
    from safetensors import SafetensorError

    if framework == "numpy":
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise RunError(f"Weights file {path} does not exist (did training finish at least one epoch?).")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunError(f"Weights file {path} is broken ({e}). Retrain, or restore the file from a copy.") from None


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model``, checking every tensor name and shape; raise RunError naming the file."""
    state = read_safetensors(path)
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or extra or wrong:
        raise RunError(
            f"Weights file {path} does not match the model in its config: missing {missing[:5]}, "
            f"unexpected {extra[:5]}, wrong shapes {wrong[:5]}."
        )
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return model
