"""Issue 15's other candidate, measured: a pretrained backbone read densely at a finer stride than its own, on the
same folds as ``sealion_counts.py`` (scenes/5.jpg cut at row 1600; train on one half, count on the other, both ways).

    python benchmarks/sealion_dense.py --data ../shared/data/sealions --out /tmp/cnnkit-dense

Three detectors, each fixed before it was run and none tuned on the counted half:

- ``hypercolumn``: the packaged ImageNet EfficientNet-Lite0, frozen; at every 8 px cell the features of its stride-8,
  16 and 32 stages (40 + 112 + 320 channels, the coarser ones bilinearly upsampled) feed a logistic regression
  (scikit-learn, standardised, C 0.01, balanced classes): cells within 12 px of a dot against cells at least 48 px
  from every dot (30,000 of them at random). The issue's quick reference did this at stride 32 and found neighbouring
  animals merged. Peaks of the smoothed (Gaussian, one cell) logit, at least 2 cells apart.
- ``heatmap``: a point detector (CenterNet's focal loss on a Gaussian of one cell, 8 px, around each dot): Lite0's
  first five stages, fine-tuned (batch norm frozen), their stride-8 and upsampled stride-16 maps joined by a small
  convolutional head that predicts one "animal centre" map at stride 8. 600 steps of 8 random 256 px crops of the
  training half (60% of them around a dot), flips and quarter turns, AdamW with a one-cycle schedule.
- ``heatmap+patches``: the same, each step also 8 of the published 96 px patches (``patches/train``; other photos at
  the same scale): an animal's patch teaches its centre cell and, being unlabelled beyond, only the 5x5 cells around
  it; a background patch teaches all its cells as background.

Detections: cells that are the largest in their 5x5 neighbourhood with a score at least each threshold of 0.1-0.5
(the table shows all of them: with 20 and 27 animals per half there is no validation region to choose one on; the
threshold fixed in advance is 0.3). Matched to dots within 48 px (``cnnkit.scan.detect.match_within``, as ``scan
--dots``). Class-agnostic only: these detectors find animals, not their classes.

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv, by default in
../shared/data/sealions (see ../shared/data/README.md). Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from _data import SEALIONS
from cnnkit.models.pretrained import packaged_imagenet
from cnnkit.scan.detect import match_within

CUT, CELL, RADIUS = 1600, 8, 48.0
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def halves(data: Path) -> dict[str, tuple[np.ndarray, list[tuple[str, float, float]]]]:
    Image.MAX_IMAGE_PIXELS = None
    photo = np.asarray(Image.open(data / "scenes" / "5.jpg").convert("RGB"))
    with open(data / "scenes" / "5-dots.csv", newline="") as f:
        dots = [(d["class_name"], float(d["row"]), float(d["col"])) for d in csv.DictReader(f)]
    return {"top": (photo[:CUT], [d for d in dots if d[1] < CUT]),
            "bottom": (photo[CUT:], [(c, r - CUT, col) for c, r, col in dots if r >= CUT])}


def to_input(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 to the packaged Lite0's [-1, 1] input."""
    x = torch.from_numpy(np.array(pixels)).float() / 127.5 - 1  # a copy: writable, contiguous
    return (x[None] if x.ndim == 3 else x).permute(0, 3, 1, 2)


def nearest_dot(shape: tuple[int, int], dots) -> np.ndarray:
    """Distance from each cell's centre to the nearest dot, in pixels."""
    ii, jj = np.mgrid[0:shape[0], 0:shape[1]]
    rows, cols = (ii + 0.5) * CELL, (jj + 0.5) * CELL
    best = np.full(shape, np.inf)
    for _, r, c in dots:
        best = np.minimum(best, np.hypot(rows - r, cols - c))
    return best


def score(peaks: list[tuple[float, float]], dots) -> dict:
    matched = len(match_within(peaks, [(r, c) for _, r, c in dots], RADIUS))
    return {"detected": len(peaks), "dots": len(dots), "matched": matched,
            "count_error": (len(peaks) - len(dots)) / len(dots),
            "precision": matched / len(peaks) if peaks else None, "recall": matched / len(dots)}


def local_peaks(score_map: torch.Tensor, least: float) -> list[tuple[float, float]]:
    """Cells that are the largest of their 5x5 neighbourhood, at least ``least``; centres in pixels."""
    top = F.max_pool2d(score_map[None, None], 5, 1, 2)[0, 0]
    ii, jj = torch.nonzero((score_map == top) & (score_map >= least), as_tuple=True)
    return [((i + 0.5) * CELL, (j + 0.5) * CELL) for i, j in zip(ii.tolist(), jj.tolist())]


# --- the hypercolumn and its logistic regression ---------------------------------------------------------------------

@torch.no_grad()
def hypercolumns(net: nn.Module, photo: np.ndarray, tile: int = 1024, margin: int = 64) -> np.ndarray:
    """(472, H/8, W/8): the stride-8, 16 and 32 stages of Lite0 at every 8 px cell, in overlapping tiles."""
    height, width = photo.shape[:2]
    out = np.zeros((472, height // CELL, width // CELL), np.float32)
    for a in range(0, height, tile):
        for b in range(0, width, tile):
            top, left = max(0, a - margin), max(0, b - margin)
            x = to_input(photo[top:min(height, a + tile + margin), left:min(width, b + tile + margin)])
            y, maps = net.bn1(net.conv_stem(x)), []
            for k, block in enumerate(net.blocks):
                y = block(y)
                if k in (2, 4, 6):
                    maps.append(y)
            size = (x.shape[2] // CELL, x.shape[3] // CELL)
            joined = torch.cat([F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps], 1)
            i, j = (a - top) // CELL, (b - left) // CELL
            h, w = min(tile, height - a) // CELL, min(tile, width - b) // CELL
            out[:, a // CELL:a // CELL + h, b // CELL:b // CELL + w] = joined[0, :, i:i + h, j:j + w].numpy()
    return out


def hypercolumn_detector(train, test, seed: int) -> tuple[dict, float]:
    from scipy.ndimage import gaussian_filter
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    net = packaged_imagenet("efficientnet_lite0")
    features = hypercolumns(net, train[0])
    distance = nearest_dot(features.shape[1:], train[1])
    rng = np.random.default_rng(seed)
    far = rng.choice(np.flatnonzero(distance.ravel() >= 48), 30000, replace=False)
    near = np.flatnonzero(distance.ravel() <= 12)
    cells = features.reshape(features.shape[0], -1).T
    x = np.concatenate([cells[near], cells[far]])
    y = np.r_[np.ones(len(near)), np.zeros(len(far))]
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=0.01, class_weight="balanced", max_iter=3000).fit(scaler.transform(x), y)
    start = time.perf_counter()
    held = hypercolumns(net, test[0])
    logit = model.decision_function(scaler.transform(held.reshape(held.shape[0], -1).T)).reshape(held.shape[1:])
    smooth = torch.from_numpy(gaussian_filter(logit, 1.0))
    seconds = time.perf_counter() - start
    top = F.max_pool2d(smooth[None, None], 5, 1, 2)[0, 0]
    rows = {}
    for t in THRESHOLDS:  # the logit's peaks (a probability saturates at 1 over touching animals: one peak for all)
        ii, jj = torch.nonzero((smooth == top) & (smooth >= np.log(t / (1 - t))), as_tuple=True)
        rows[t] = score([((i + 0.5) * CELL, (j + 0.5) * CELL) for i, j in zip(ii.tolist(), jj.tolist())], test[1])
    return rows, seconds


# --- the point detector ----------------------------------------------------------------------------------------------

class CentreNet(nn.Module):
    """Lite0's stages to stride 16, its stride-8 and upsampled stride-16 maps joined, one centre map at stride 8."""

    def __init__(self):
        super().__init__()
        lite0 = packaged_imagenet("efficientnet_lite0")
        self.stem = nn.Sequential(lite0.conv_stem, lite0.bn1)
        self.stride8, self.stride16 = nn.Sequential(*lite0.blocks[:3]), nn.Sequential(*lite0.blocks[3:5])
        self.head = nn.Sequential(nn.Conv2d(40 + 112, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 1, 1))
        nn.init.constant_(self.head[-1].bias, -2.19)  # CenterNet's prior: 0.1 everywhere at the start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.stride8(self.stem(x))
        coarse = F.interpolate(self.stride16(fine), size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([fine, coarse], 1))


def centre_target(shape: tuple[int, int], dots) -> np.ndarray:
    distance = nearest_dot(shape, dots)
    target = np.exp(-distance ** 2 / (2 * CELL ** 2)).astype(np.float32)
    for _, r, c in dots:
        target[min(shape[0] - 1, int(r // CELL)), min(shape[1] - 1, int(c // CELL))] = 1.0
    return target


def focal_loss(logit: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, over the cells where ``mask`` is 1."""
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    centre = target.ge(0.99).float() * mask
    positive = -((1 - p) ** 2 * torch.log(p) * centre).sum()
    negative = -((1 - target) ** 4 * p ** 2 * torch.log(1 - p) * (1 - centre) * mask).sum()
    return (positive + negative) / centre.sum().clamp(min=1)


def crops(photo, target, dots, rng, count: int, side: int = 256):
    height, width = photo.shape[:2]
    xs, ts = [], []
    for _ in range(count):
        if rng.random() < 0.6:
            _, r, c = dots[rng.integers(len(dots))]
            a = int(np.clip(r - rng.integers(16, side - 16), 0, height - side))
            b = int(np.clip(c - rng.integers(16, side - 16), 0, width - side))
        else:
            a, b = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
        a, b = a // CELL * CELL, b // CELL * CELL
        x, t = photo[a:a + side, b:b + side], target[a // CELL:(a + side) // CELL, b // CELL:(b + side) // CELL]
        xs.append(x)
        ts.append(t)
    return xs, ts


def published(data: Path) -> list[tuple[np.ndarray, bool]]:
    """``patches/train``: (pixels, is an animal)."""
    return [(np.asarray(Image.open(p).convert("RGB")), folder.name != "backgrounds")
            for folder in sorted((data / "patches" / "train").iterdir()) for p in sorted(folder.glob("*.png"))]


def patch_batch(patches, rng, count: int):
    """Published patches: an animal teaches its centre and the 5x5 cells around it; a background all of its cells."""
    xs, ts, ms = [], [], []
    for k in rng.choice(len(patches), count, replace=False):
        pixels, animal = patches[k]
        n = pixels.shape[0] // CELL
        target, mask = np.zeros((n, n), np.float32), np.ones((n, n), np.float32)
        if animal:
            target = centre_target((n, n), [("animal", pixels.shape[0] / 2, pixels.shape[1] / 2)])
            mask[:] = 0
            mask[n // 2 - 2:n // 2 + 3, n // 2 - 2:n // 2 + 3] = 1
        xs.append(pixels)
        ts.append(target)
        ms.append(mask)
    return xs, ts, ms


def turned(xs, *maps, rng):
    """The same quarter turn and flip for each image and its maps."""
    out = [[] for _ in range(1 + len(maps))]
    for items in zip(xs, *maps):
        k, flip = int(rng.integers(4)), rng.random() < 0.5
        for slot, item in zip(out, items):
            item = np.rot90(item, k)
            slot.append(np.ascontiguousarray(item[:, ::-1] if flip else item))
    return out


def heatmap_detector(train, test, seed: int, extra=None, steps: int = 600) -> tuple[dict, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = CentreNet()
    target = centre_target((train[0].shape[0] // CELL, train[0].shape[1] // CELL), train[1])
    backbone = [*net.stem.parameters(), *net.stride8.parameters(), *net.stride16.parameters()]
    optimizer = torch.optim.AdamW([{"params": net.head.parameters()}, {"params": backbone}], weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[1e-3, 2e-4], total_steps=steps, pct_start=0.1)
    net.train()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    for _ in range(steps):
        xs, ts = turned(*crops(train[0], target, train[1], rng, 8), rng=rng)
        loss = focal_loss(net(to_input(np.stack(xs))), torch.from_numpy(np.stack(ts))[:, None],
                          torch.ones(len(ts), 1, *ts[0].shape))
        if extra:
            xs, ts, ms = turned(*patch_batch(extra, rng, 8), rng=rng)
            loss = loss + focal_loss(net(to_input(np.stack(xs))), torch.from_numpy(np.stack(ts))[:, None],
                                     torch.from_numpy(np.stack(ms))[:, None])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    net.eval()
    start = time.perf_counter()
    with torch.no_grad():
        heat = torch.sigmoid(net(to_input(test[0])))[0, 0]
    seconds = time.perf_counter() - start
    return {t: score(local_peaks(heat, t), test[1]) for t in THRESHOLDS}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SEALIONS.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-dense"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if SEALIONS.missing(args.data):
        return
    torch.set_num_threads(args.threads)
    parts, extra = halves(args.data), published(args.data)
    results = {}
    for train, test in (("top", "bottom"), ("bottom", "top")):
        fold = f"train {train}, count {test}"
        for name, run in (("hypercolumn", lambda a, b: hypercolumn_detector(a, b, args.seed)),
                          ("heatmap", lambda a, b: heatmap_detector(a, b, args.seed, steps=args.steps)),
                          ("heatmap+patches", lambda a, b: heatmap_detector(a, b, args.seed, extra, args.steps))):
            start = time.perf_counter()
            rows, seconds = run(parts[train], parts[test])
            results.setdefault(fold, {})[name] = {"rows": rows, "scan_seconds": round(seconds, 1),
                                                  "total_seconds": round(time.perf_counter() - start, 1)}
            print(f"{fold}: {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("| fold | detector | threshold | animals: detected / dots | count error | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    for fold, detectors in results.items():
        for name, result in detectors.items():
            for t, r in result["rows"].items():
                p = "n/a" if r["precision"] is None else f"{r['precision']:.2f}"
                print(f"| {fold} | {name} | {t} | {r['detected']} / {r['dots']} | {r['count_error']:+.0%} | {p} "
                      f"| {r['recall']:.2f} |")
    print("\n| fold | detector | seconds to score the held-out half | seconds in all |\n|---|---|---|---|")
    for fold, detectors in results.items():
        for name, result in detectors.items():
            print(f"| {fold} | {name} | {result['scan_seconds']} | {result['total_seconds']} |")


if __name__ == "__main__":
    main()
