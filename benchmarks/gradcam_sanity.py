"""Grad-CAM sanity checks on real photographs (issue 21).

    python benchmarks/gradcam_sanity.py --data ../shared/data/hymenoptera --out /tmp/cnnkit-gradcam [--seeds 0 1 2]

1. **A planted marker.** Every photograph of ``DATA/{train,val}/*/`` is resized to 64x64 and given a random label,
   ``marked`` or ``plain``; the ``marked`` ones get a 6x6 white square with a black rim near the bottom-right corner.
   The marker is the only thing that tells the classes apart. A scratch CNN is trained on 80% of the photographs
   (``cnnkit train``, its own split), then on the 20% it never saw: accuracy, and for the marked images the share
   whose Grad-CAM peak (for the predicted class) lies within 4 pixels of the marker, and the share of the map's mass
   there (that region, the marker and 4 pixels around it, is 4.8% of the image).
2. **Randomised weights** (Adebayo et al., "Sanity checks for saliency maps"): the maps of the trained network
   against those of the same network with its classifier layer, then all its weights, re-initialised. A method that
   only finds edges gives the same maps either way; Grad-CAM should not. Reported: the median Spearman correlation
   between the trained and randomised maps over the held-out images.

Medians over seeds (each: a new labelling, split and initialisation).

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA
from _results import add_option, command_line, record

MEASURES = {"accuracy": "held-out accuracy",
            "peak_on_marker": "marked images whose Grad-CAM peak is within 4 px of the marker",
            "mass_on_marker": "share of the map's mass within 4 px of the marker (that region is {share:.1%} of the "
                              "image)",
            "spearman_random_classifier": "Spearman correlation, trained maps vs the same network with its classifier "
                                          "re-initialised",
            "spearman_random_all": "Spearman correlation, trained maps vs all weights re-initialised",
            "spearman_trained_rerun": "Spearman correlation, trained maps vs themselves recomputed"}
COLUMNS = [{"key": "measure", "label": "measure"}, {"key": "median", "label": "median of 3 seeds", "format": "{:.3f}"},
           {"key": "per_seed", "label": "per seed", "format": "{:.3f}", "join": ", "}]


def tables(results: list[dict]) -> list[dict]:
    """The results file's table: each measure's median over the seeds, and its value per seed."""
    share = results[0]["marker_region_share"]
    rows = [{"measure": text.format(share=share), "median": round(float(np.median([r[key] for r in results])), 3),
             "per_seed": [round(r[key], 3) for r in results]} for key, text in MEASURES.items()]
    return [{"id": "checks", "columns": COLUMNS, "rows": rows}]

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]
SIDE, MARK, INSET, NEAR = 64, 6, 4, 4


def marker_box() -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive ends, of the marker."""
    top = left = SIDE - INSET - MARK
    return top, left, top + MARK, left + MARK


def make_data(source: Path, out: Path, seed: int) -> tuple[list[Path], list[str]]:
    """Training folder ``out/train/{marked,plain}`` (80%) and the held-out images and labels (20%)."""
    from PIL import Image

    files = sorted(p for p in source.glob("*/*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rng = np.random.default_rng(seed)
    rng.shuffle(files)
    labels = rng.permutation(np.arange(len(files)) % 2)
    held, held_labels = [], []
    top, left, bottom, right = marker_box()
    for i, (path, label) in enumerate(zip(files, labels)):
        pixels = np.asarray(Image.open(path).convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)).copy()
        name = "marked" if label else "plain"
        if label:
            pixels[top:bottom, left:right] = 0
            pixels[top + 1:bottom - 1, left + 1:right - 1] = 255
        folder = out / ("held" if i < len(files) // 5 else "train") / name
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{path.stem}.png")
        if i < len(files) // 5:
            held.append(folder / f"{path.stem}.png")
            held_labels.append(name)
    return held, held_labels


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(a.ravel(), b.ravel()).statistic
    return float(0.0 if np.isnan(value) else value)


def randomised(network, everything: bool):
    import copy

    import torch

    network = copy.deepcopy(network)
    torch.manual_seed(1234)
    modules = network.modules() if everything else [network.classifier]
    for module in modules:
        if hasattr(module, "reset_parameters") and module is not network:
            module.reset_parameters()
    return network.eval()


def measure(data: Path, out: Path, seed: int, model: str, epochs: int) -> dict:
    from cnnkit.inference import Predictor
    from cnnkit.inspection.attribution import grad_cam
    from cnnkit.inspection.network import ScoreModel

    held, labels = make_data(data, out / "data", seed)
    run = out / "run"
    subprocess.run([*CNNKIT, "train", out / "data" / "train", "--model", model, "--epochs", str(epochs),
                    "--image-size", f"{SIDE}x{SIDE}", "--seed", str(seed), "--out", run], check=True,
                   stdout=subprocess.DEVNULL)
    predictor = Predictor.load(run, backend="torch")
    images = predictor.load_images(held)
    predicted = predictor.predict_arrays(images).argmax(1)
    truth = np.array([predictor.classes.index(label) for label in labels])
    cams = grad_cam(ScoreModel(predictor.model, predictor.preprocessing), images, predicted.tolist())
    top, left, bottom, right = marker_box()
    near = np.zeros((SIDE, SIDE), bool)
    near[max(0, top - NEAR):bottom + NEAR, max(0, left - NEAR):right + NEAR] = True
    marked = truth == predictor.classes.index("marked")
    peaks = [near[np.unravel_index(int(np.argmax(c)), c.shape)] for c in cams[marked]]
    mass = [c[near].sum() / max(c.sum(), 1e-12) for c in cams[marked]]
    result = {"seed": seed, "held_out": len(held), "accuracy": float((predicted == truth).mean()),
              "peak_on_marker": float(np.mean(peaks)), "mass_on_marker": float(np.median(mass)),
              "marker_region_share": float(near.mean())}
    for name, everything in (("classifier", False), ("all", True)):
        other = grad_cam(ScoreModel(randomised(predictor.model, everything), predictor.preprocessing), images,
                         predicted.tolist())
        result[f"spearman_random_{name}"] = float(np.median([spearman(a, b) for a, b in zip(cams, other)]))
    result["spearman_trained_rerun"] = float(np.median([spearman(a, b) for a, b in zip(cams, grad_cam(
        ScoreModel(predictor.model, predictor.preprocessing), images, predicted.tolist()))]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-gradcam"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="simple_cnn")
    parser.add_argument("--epochs", type=int, default=15)
    add_option(parser, "gradcam")
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.data):
        return
    results = []
    for seed in args.seeds:
        result = measure(args.data, args.out / f"seed-{seed}", seed, args.model, args.epochs)
        print(json.dumps(result), file=sys.stderr)
        results.append(result)
    keys = [k for k in results[0] if k != "seed"]
    summary = {k: float(np.median([r[k] for r in results])) for k in keys}
    (args.out / "gradcam_sanity.json").write_text(json.dumps({"runs": results, "median": summary}, indent=1))
    print(f"model {args.model}, {args.epochs} epochs, seeds {args.seeds}: medians")
    for k, v in summary.items():
        print(f"  {k:28s} {v:.3f}")
    if args.results:
        record(args.results, "gradcam", tables(results), command_line(__file__))


if __name__ == "__main__":
    main()
