"""Training against its limit: `cnnkit train` beside a minimal PyTorch loop on the same data, model, precision, batch
and augmentation, interleaved in one run (issue 34).

    python benchmarks/train_vs_loop.py [--photos ../shared/data/hymenoptera] [--rounds 2] [--epochs 3] [--results]
    python benchmarks/train_vs_loop.py --accelerator gpu --results     # on a GPU: both loops there

Two pairs, each measured --rounds times, alternately (cnnkit, bare loop, cnnkit, ...), medians of the epochs:
- scratch: `simple_cnn` on the built-in wafer maps (generated, nothing downloaded), `cnnkit train --model simple_cnn`;
- fine-tuning: EfficientNet-Lite0 (ImageNet weights) on the photos (by default hymenoptera, when present),
  `cnnkit train --strategy finetune`: only the fine-tuning epochs are timed (the solved head before them is not an
  epoch loop).
cnnkit's epochs are timed by a Lightning callback from the epoch's start to its validation's start (training batches
only: loading, augmentation, the step, Lightning's hooks and logging) and to the next epoch's start (with validation
and the epoch's checkpoint). The bare loop is what a careful user writes by hand: the run's own decoded training
images in memory, a seeded permutation, slices of it, the same network built the same way (and, for fine-tuning,
the same frozen batch norm, channels_last and precision), the same augmentation layer, Adam, cross-entropy, and a
validation pass over the run's validation images. A third row times the bare loop without augmentation: what the
augmentation costs.

Data: the built-in wafer maps (generated) and, for fine-tuning, photos not in this repository: hymenoptera
(https://download.pytorch.org/tutorial/hymenoptera_data.zip), by default in ../shared/data/hymenoptera; without them
the script says so in one line and exits 0 (`--scratch-only` measures the scratch pair alone).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA
from _results import add_option, command_line, record

COLUMNS = [{"key": "pair", "label": "training"}, {"key": "path", "label": "path"},
           {"key": "train_images_per_s", "label": "training images/s"},
           {"key": "ratio", "label": "x bare loop", "format": "{:.2f}"},
           {"key": "epoch_images_per_s", "label": "images/s with validation and checkpoint"},
           {"key": "epoch_ratio", "label": "x bare loop", "format": "{:.2f}"}]


class EpochTimer:
    """A Lightning callback (built lazily): each epoch's seconds of training batches and of the whole epoch."""

    def __new__(cls):
        import lightning as L

        class Timer(L.Callback):
            def __init__(self):
                self.train, self.whole, self.phases, self._start, self._val = [], [], [], None, None

            def on_train_epoch_start(self, trainer, module):
                self._close()
                self._start, self._val = time.perf_counter(), None

            def on_validation_epoch_start(self, trainer, module):
                if self._start is not None and self._val is None:
                    self._val = time.perf_counter()

            def on_train_end(self, trainer, module):
                self._close()

            def _close(self):
                if self._start is not None:
                    end = time.perf_counter()
                    self.train.append((self._val or end) - self._start)
                    self.whole.append(end - self._start)
                    self._start = None

        return Timer()


def cnnkit_run(data: Path, out: Path, config) -> tuple[list[float], list[float], object]:
    """Train into ``out``; the timed epochs (training-only and whole seconds) and the trained run."""
    from cnnkit.training.fit import train

    timer = EpochTimer()
    trained = train(data, out, config, progress=False, overwrite=True, callbacks=[timer])
    return timer.train, timer.whole, trained


def run_images(trained, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The run's own images of ``split`` (decoded with its preprocessing, as training decoded them) and labels."""
    from cnnkit.run import RunFolder

    arrays = RunFolder(trained.run_dir).load_split(split, list(trained.record.classes), trained.record.preprocessing)
    return np.asarray(arrays.images), np.asarray(arrays.labels)


def bare_loop(trained, epochs: int, batch: int, augment: str | None, finetune: bool, precision: str,
              seed: int = 0, device: str = "cpu") -> tuple[list[float], list[float]]:
    """The minimal loop on the run's train and validation images: per epoch, training seconds and whole seconds.
    On a GPU the images live on it (small data fits), as a hand-written GPU loop keeps them."""
    import torch
    import torch.nn.functional as F

    from cnnkit.augment.layer import Augmentation
    from cnnkit.data.preprocess import normalize
    from cnnkit.models.init import init_weights
    from cnnkit.models.pretrained import load_pretrained

    record, p = trained.record, trained.record.preprocessing
    train_x, train_y = run_images(trained, "train")
    val_x, val_y = run_images(trained, "val")
    train_x = torch.from_numpy(train_x).permute(0, 3, 1, 2).contiguous().to(device)
    val_x = torch.from_numpy(val_x).permute(0, 3, 1, 2).contiguous().to(device)
    train_y, val_y = torch.from_numpy(train_y).to(device), torch.from_numpy(val_y).to(device)
    torch.manual_seed(seed)
    model = init_weights(record.build_network(), record.training.init)  # the run's network, built as training does
    if finetune:
        load_pretrained(model, record.model.name)
        model.set_trainable_stages(-1)
        model.keep_batch_norm_frozen = True
        model = model.to(memory_format=torch.channels_last)
    model, layer = model.to(device), Augmentation(augment, p.image_size).to(device)
    optimizer = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-4 if finetune else 1e-3)
    generator = torch.Generator().manual_seed(seed)
    autocast = torch.autocast(device, torch.bfloat16, enabled=precision == "bf16")
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def inputs(x, training):
        x = x.float() / 255.0
        x = normalize(layer(x) if training else x, p)
        return x.contiguous(memory_format=torch.channels_last) if finetune else x

    train_s, whole_s = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=generator).to(device)
        for i in range(0, len(order), batch):
            index = order[i:i + batch]
            with autocast:
                loss = F.cross_entropy(model(inputs(train_x[index], True)), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize()
        middle = time.perf_counter()
        model.eval()
        with torch.inference_mode(), autocast:
            correct = sum(int((model(inputs(val_x[i:i + batch], False)).argmax(1) == val_y[i:i + batch]).sum())
                          for i in range(0, len(val_x), batch))
        del correct
        synchronize()
        train_s.append(middle - start)
        whole_s.append(time.perf_counter() - start)
    return train_s, whole_s


def rate(images: int, seconds: list[float], skip_first: bool) -> float:
    """Images per second of the median epoch (the first left out when there are more: warm-up)."""
    kept = seconds[1:] if skip_first and len(seconds) > 1 else seconds
    return images / statistics.median(kept)


def pair(name: str, data: Path, config, rounds: int, finetune: bool, work: Path, device: str) -> list[dict]:
    """cnnkit and the bare loop (with and without the augmentation), alternately; a row per path."""
    from cnnkit.training.phases import plan_phases

    times: dict[str, dict[str, list[float]]] = {}
    train_images = val_images = 0
    for r in range(rounds):
        train_s, whole_s, trained = cnnkit_run(data, work / f"{name}-{r}", config)
        counts = trained.record.data.counts
        train_images, val_images = sum(counts["train"].values()), sum(counts["val"].values())
        timed = next((p for p in trained.record.result.phases if p.name == ("finetune" if finetune else "train")),
                     None)
        phase = plan_phases(config)[-1]
        augment = (timed.augment if timed else None) or phase.augment
        precision = (timed.precision if timed else None) or phase.precision
        epochs = len(train_s)
        for path, got in (("cnnkit train", (train_s, whole_s)),
                          ("bare PyTorch loop, same augmentation",
                           bare_loop(trained, epochs, config.batch_size, augment, finetune, precision, device=device)),
                          ("bare PyTorch loop, no augmentation",
                           bare_loop(trained, epochs, config.batch_size, None, finetune, precision, device=device))):
            entry = times.setdefault(path, {"train": [], "whole": []})
            entry["train"] += got[0][1:] if len(got[0]) > 1 else got[0]
            entry["whole"] += got[1][1:] if len(got[1]) > 1 else got[1]
        print(f"{name} round {r + 1}: augment {augment!r}, precision {precision}, {epochs} epochs, "
              f"{train_images} training and {val_images} validation images", file=sys.stderr)
    reference = times["bare PyTorch loop, same augmentation"]
    base_train = train_images / statistics.median(reference["train"])
    base_whole = (train_images + val_images) / statistics.median(reference["whole"])
    rows = []
    for path, entry in times.items():
        train_rate = train_images / statistics.median(entry["train"])
        whole_rate = (train_images + val_images) / statistics.median(entry["whole"])
        rows.append({"pair": name, "path": path, "train_images_per_s": round(train_rate, 1),
                     "ratio": round(train_rate / base_train, 3),
                     "epoch_images_per_s": round(whole_rate, 1), "epoch_ratio": round(whole_rate / base_whole, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=HYMENOPTERA.default, help="photos for fine-tuning")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run (the first is left out)")
    parser.add_argument("--wafers-per-class", type=int, default=120)
    parser.add_argument("--accelerator", default="auto", choices=("auto", "cpu", "gpu"),
                        help="where both train (auto: a CUDA GPU when there is one)")
    parser.add_argument("--scratch-only", action="store_true", help="the scratch pair alone (no photos needed)")
    add_option(parser, "training_speed")
    args = parser.parse_args()
    if not args.scratch_only and HYMENOPTERA.missing(args.photos, "--photos"):
        return

    import os

    from cnnkit.config import TrainConfig
    from cnnkit.data.builtin import export_dataset

    import torch

    cuda = args.accelerator != "cpu" and torch.cuda.is_available()
    device, accelerator = ("cuda", "gpu") if cuda else ("cpu", "cpu")
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wafers = work / "wafers"
        export_dataset("wafers", wafers, size=args.wafers_per_class)
        scratch = TrainConfig(model="simple_cnn", epochs=args.epochs, early_stopping=0, seed=0,
                              accelerator=accelerator)
        rows += pair("scratch: simple_cnn on wafer maps", wafers, scratch, args.rounds, False, work, device)
        if not args.scratch_only:
            finetune = TrainConfig(model="efficientnet_lite0", pretrained=True, strategy="finetune",
                                   finetune_epochs=args.epochs, early_stopping=0, seed=0, accelerator=accelerator)
            rows += pair("fine-tuning: EfficientNet-Lite0 on photos", args.photos, finetune, args.rounds, True, work,
                         device)
    load_after = os.getloadavg()[0]
    for row in rows:
        print(f"{row['pair']:45s} {row['path']:40s} {row['train_images_per_s']:8.1f} img/s {row['ratio']:.2f}x  "
              f"(with validation {row['epoch_images_per_s']:.1f}, {row['epoch_ratio']:.2f}x)")
    print(f"load average (1 min) before, after: {load_before:.2f}, {load_after:.2f}")
    if args.results:
        table = {"id": "train_vs_loop", "command": command_line(__file__), "columns": COLUMNS, "rows": rows,
                 "note": f"load average (1 min) before, after: {load_before:.2f}, {load_after:.2f}"}
        record(args.results, "training_speed", [table], command_line(__file__))


if __name__ == "__main__":
    main()
