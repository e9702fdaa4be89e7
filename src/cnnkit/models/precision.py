"""Where bfloat16 runs natively: training, fine-tuning and scanning use it there when their ``precision`` is auto."""

from __future__ import annotations


def bf16_supported(accelerator: str) -> bool:
    """Whether bf16 autocast runs natively here: a CUDA GPU that has it, or a CPU with AVX512-BF16 or AMX."""
    import torch

    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return accelerator in ("cpu", "auto") and _cpu_bf16_native()


def _cpu_bf16_native() -> bool:
    """AVX512-BF16 or AMX on x86 (oneDNN's own check also passes on plain AVX-512, where bf16 is emulated and
    slower than float32); elsewhere (ARM), oneDNN's check."""
    import platform

    import torch

    try:
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without these checks or without oneDNN
        return False
