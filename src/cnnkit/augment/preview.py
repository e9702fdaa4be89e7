"""``cnnkit augment-preview``: originals and augmented copies side by side, to check that labels survive."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit._io import write_bytes
from cnnkit.config import PreviewConfig
from cnnkit.data.decode import load_image, probe_image
from cnnkit.data.files import scan_folder
from cnnkit.data.prepare import auto_image_size
from cnnkit.errors import ConfigError
from cnnkit.options import with_options
from cnnkit.plots import image_grid_png


@with_options(PreviewConfig)
def augment_preview(data: str | Path, spec: str, out: str | Path, config: PreviewConfig | None = None) -> Path:
    """Write a PNG grid: one row per original image (the first ``per_class`` of each class), then ``copies``
    augmented versions at the size training would use."""
    import torch

    from cnnkit.augment.layer import Augmentation, seeded

    augmentation = Augmentation(spec, (1, 1))
    if not augmentation.spec:
        raise ConfigError("augment-preview needs a non-empty `augment` spec.")
    config = config or PreviewConfig()
    per_class, copies, image_size, seed = config.per_class, config.copies, config.image_size, config.seed
    scan = scan_folder(data)
    samples = scan.samples.get("train") or [s for found in scan.samples.values() for s in found]
    chosen = [s for c in scan.classes for s in [s for s in samples if s[1] == c][:per_class]]
    paths = [scan.root / rel for rel, _ in chosen]
    infos = [probe_image(p) for p in paths]
    size = tuple(image_size) if image_size else auto_image_size(infos, None)
    channels = 1 if all(i.grayscale for i in infos) else 3
    augmentation = Augmentation(augmentation.spec, size)
    originals = np.stack([load_image(p, size, channels) for p in paths])
    batch = torch.from_numpy(originals).permute(0, 3, 1, 2).float() / 255.0
    with seeded(seed, batch.device):
        versions = [batch] + [augmentation.apply(batch) for _ in range(copies)]
    stacked = torch.stack(versions, 1).flatten(0, 1)  # original, copy 1..k for each image in turn
    images = (stacked.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)
    captions = [f"{label}" if k == 0 else f"copy {k}" for _, label in chosen for k in range(copies + 1)]
    title = f"augment: {augmentation.spec}"
    return write_bytes(out, image_grid_png(images, captions, columns=copies + 1, title=title))
