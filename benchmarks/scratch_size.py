"""The automatic input size of a CNN trained from scratch on photographs: square 64x64 (cnnkit before issue 17)
against the images' aspect ratio kept (64x48 for hymenoptera's median 500x375), and a larger 96x72, over three seeds.

    python benchmarks/scratch_size.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-size

hymenoptera's train/ is the training data (validation carved from it, seeded) and its val/ (153 images) the test
split, as in benchmarks/latent_baselines.py. simple_cnn, 30 epochs, `--augment flip,rotate=10,zoom=0.1`. Reported:
test accuracy per seed and the median, and the training time (same machine, one run at a time).

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA

SIZES = {"square 64x64": (64, 64), "aspect kept 64x48 (the default)": None, "aspect kept 96x72": (72, 96)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-size"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.hymenoptera, "--hymenoptera"):
        return
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.training.fit import train

    data = args.out / "hymenoptera"
    if not data.exists():
        data.mkdir(parents=True)
        (data / "train").symlink_to(args.hymenoptera.resolve() / "train")
        (data / "test").symlink_to(args.hymenoptera.resolve() / "val")
    results = {}
    for name, size in SIZES.items():
        for seed in args.seeds:
            start = time.perf_counter()
            trained = train(data, args.out / f"{name.split()[-1]}-{seed}", model="simple_cnn", epochs=30,
                            augment="flip,rotate=10,zoom=0.1", seed=seed, image_size=size, skip_bad=True,
                            progress=False, overwrite=True)
            seconds = time.perf_counter() - start
            accuracy = evaluate_run(trained.run_dir, report=False).metrics["accuracy"]
            results.setdefault(name, []).append({"seed": seed, "accuracy": accuracy, "seconds": round(seconds, 1),
                                                 "size": list(trained.record.preprocessing.image_size)})
            print(json.dumps({name: results[name][-1]}), flush=True)
    print("\n| input size | test accuracy per seed | median | median training time (s) |\n|---|---|---|---|")
    for name, rows in results.items():
        per_seed = ", ".join(f"{r['accuracy']:.4f}" for r in rows)
        print(f"| {name} | {per_seed} | "
              f"{np.median([r['accuracy'] for r in rows]):.4f} | {np.median([r['seconds'] for r in rows]):.1f} |")


if __name__ == "__main__":
    main()
