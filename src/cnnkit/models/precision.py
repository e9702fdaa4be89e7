"""Where bfloat16 runs natively: training, fine-tuning and scanning use it there when their ``precision`` is auto."""

from __future__ import annotations


def bf16_supported(accelerator: str) -> bool:
    """Whether bf16 autocast runs natively here: a CUDA GPU that has it, or a CPU with AVX512-BF16 or AMX."""
    import torch

    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        native = False
    return accelerator in ("cpu", "auto") and native
