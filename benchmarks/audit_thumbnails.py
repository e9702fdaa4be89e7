"""How far apart the audit's pixel sign puts copies and distinct photographs: the correlation of 16x16 grayscale
thumbnails (brightness and contrast set aside), for the near-duplicates `audit_planted.py` plants and for every other
pair of images in the copy of hymenoptera, and the planted copies' difference-hash distances.

    python benchmarks/audit_thumbnails.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-thumbs [--seeds 0 1 2 3]

No features are computed: a few seconds per seed.

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import HYMENOPTERA  # noqa: E402
from audit_planted import plant  # noqa: E402


def measure(source: Path, data: Path, seed: int) -> dict:
    from cnnkit.audit.inventory import inventory

    shutil.rmtree(data, ignore_errors=True)
    planted = plant(source, data, seed)
    _, items = inventory(data)
    items = [i for i in items if not i.error]
    thumbs = np.stack([np.frombuffer(i.thumbnail, np.uint8).astype(np.float64) for i in items])
    thumbs = (thumbs - thumbs.mean(1, keepdims=True)) / np.maximum(thumbs.std(1, keepdims=True), 1e-9)
    corr = thumbs @ thumbs.T / thumbs.shape[1]
    index = {i.path: k for k, i in enumerate(items)}
    near = [(index[a], index[b]) for a, b in planted["near"]]
    others = np.ones_like(corr, bool)
    np.fill_diagonal(others, False)
    for a, b in near + [(index[a], index[b]) for a, b in planted["exact"]]:
        others[a, b] = others[b, a] = False
    hashes = [bin(items[a].dhash ^ items[b].dhash).count("1") for a, b in near]
    return {"seed": seed, "images": len(items), "planted_near_lowest": float(min(corr[a, b] for a, b in near)),
            "other_pairs_highest": float(corr[others].max()), "planted_near_hash_bits": hashes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-thumbs"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.hymenoptera, "--hymenoptera"):
        return
    for seed in args.seeds:
        print(json.dumps(measure(args.hymenoptera, args.out / "planted", seed)), flush=True)
    shutil.rmtree(args.out / "planted", ignore_errors=True)


if __name__ == "__main__":
    main()
