"""Active learning on real images: the test accuracy that random labelling reaches with N labels, against the labels
each `cnnkit suggest` strategy needs for it (issue 37's goal: at most 0.6 N, on two sets, over 3 seeds).

    python benchmarks/suggest_real.py --results     # hymenoptera and sea lions; add --sets digits for a third

cnnkit's own code paths, simulated round by round: EfficientNet-Lite0's pooled features (ImageNet weights) from the
feature cache (computed once per image, so every round after the first costs a head's fit), the solved head (the C
of `choose_by_cv`, then `fit_softmax`, as a transfer run's head) refitted after every round, and the pool ranked by
`cnnkit.suggest.choose.choose`, the function `cnnkit suggest` ranks with (margin, entropy, k-centre greedy, hybrid;
class balance on; the latent space is the pooled features, as a transfer run's; the labelled images count as
covered). Random labelling draws uniformly from the pool. Start: 2 labels per class drawn at random (the same for
every strategy within a seed); then `step` labels a round; test accuracy on a fixed held-out part, averaged over
`--seeds` seeds. Not simulated: the mirror averaging a run may choose, and the run's own validation split (the head
is chosen by cross-validation on the labelled images alone, as it is on train+val).

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), and the sea-lion patches
(https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count, as a public demo cut them), by default in
../shared/data; without them the script says so in one line and exits 0. Sets: hymenoptera (pool train/, test val/),
sealions (pool patches/train and val, test patches/test), digits (cnnkit's built-in, 30% held out). `--results`
writes benchmarks/results/suggest_real.json and the learning curves' figure benchmarks/results/suggest_real.png.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _data import HYMENOPTERA, SEALIONS
from _results import RESULTS, add_option, command_line, record

STRATEGIES = ("random", "margin", "entropy", "kcenter", "hybrid")
FIGURE = RESULTS / "suggest_real.png"
SETS = {  # labels a round, labels at the end (N)
    "hymenoptera": {"step": 8, "budget": 52},
    "sealions": {"step": 18, "budget": 120},
    "digits": {"step": 20, "budget": 200},
}
DONE = Path(tempfile.gettempdir()) / "cnnkit-suggest-real"  # each finished curve, so a stopped run resumes
SUMMARY = [{"key": "set", "label": "set"}, {"key": "n", "label": "N (random's labels)"},
           {"key": "random", "label": "random's accuracy at N", "format": "{:.3f}"},
           *[{"key": s, "label": f"{s}: labels for it (share of N)", "format": "{labels} ({share:.2f} N)",
              "missing": "not reached"} for s in STRATEGIES[1:]]]


def lite0():
    """EfficientNet-Lite0 with ImageNet weights, as a transfer run builds it, and its preprocessing."""
    from cnnkit.data.preprocess import Preprocessing
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained, pretrained_normalization
    from cnnkit.models.transfer import backbone_config

    model = create_model("efficientnet_lite0", 2, 3)
    load_pretrained(model, "efficientnet_lite0")
    cfg = backbone_config("efficientnet_lite0")
    mean, std = pretrained_normalization("efficientnet_lite0")
    return model.eval(), Preprocessing(tuple(cfg["input_size"][1:]), 3, tuple(mean), tuple(std), "bilinear",
                                       cfg["crop_pct"])


def folder_images(*roots: Path) -> tuple[list[Path], np.ndarray]:
    """The image files of class folders under ``roots`` and their class names."""
    from cnnkit.data.files import expand_image_paths

    paths = [p for root in roots for p in expand_image_paths([root])]
    return paths, np.array([p.parent.name for p in paths])


def features(model, preprocessing, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The pooled features of the images that decode (from the feature cache after the first time) and which did."""
    from cnnkit.data.prepare import decode_images
    from cnnkit.feature_cache import cached_features

    images, decoded = decode_images(paths, preprocessing, skip_bad=True)
    return cached_features(model, images, preprocessing, progress=False)[0][:, 0].numpy().astype(np.float64), decoded


def load_set(name: str, args, model, preprocessing) -> dict:
    """A set's pool and test features and labels (class indices)."""
    if name == "hymenoptera":
        pool, test = [args.hymenoptera / "train"], [args.hymenoptera / "val"]
    elif name == "sealions":
        pool, test = [args.sealions / "patches/train", args.sealions / "patches/val"], [args.sealions / "patches/test"]
    else:
        from sklearn.model_selection import train_test_split

        from cnnkit.data.builtin import export_dataset

        folder = Path(tempfile.mkdtemp(prefix="cnnkit-digits-"))
        export_dataset("digits", folder)
        paths, labels = folder_images(folder)
        x, decoded = features(model, preprocessing, paths)
        classes = sorted(set(labels))
        y = np.array([classes.index(c) for c in labels[decoded]])
        x_pool, x_test, y_pool, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
        return {"x_pool": x_pool, "y_pool": y_pool, "x_test": x_test, "y_test": y_test, "classes": classes}
    out = {}
    for part, roots in (("pool", pool), ("test", test)):
        paths, labels = folder_images(*roots)
        out[f"x_{part}"], decoded = features(model, preprocessing, paths)
        out[f"labels_{part}"] = labels[decoded]
    classes = sorted(set(out["labels_pool"]))
    for part in ("pool", "test"):
        out[f"y_{part}"] = np.array([classes.index(c) for c in out.pop(f"labels_{part}")])
    return {**out, "classes": classes}


def solved_head(x: np.ndarray, y: np.ndarray, classes: int, seed: int):
    """The head a transfer run solves: C by cross-validation on the labelled images, then the fit at that C."""
    from cnnkit.models.linear_head import choose_by_cv, fit_softmax

    C, _ = choose_by_cv(x, y, classes, seed=seed)
    return fit_softmax(x, y, classes, C)[0]


def picks(strategy: str, fit, x_rest: np.ndarray, x_labelled: np.ndarray, step: int,
          rng: np.random.Generator) -> list[int]:
    """Indices into ``x_rest`` of the next ``step`` images to label, as `cnnkit suggest` ranks them."""
    from cnnkit.suggest.choose import LATENT_STRATEGIES, choose, entropies, margins

    if strategy == "random":
        return [int(i) for i in rng.choice(len(x_rest), min(step, len(x_rest)), replace=False)]
    probabilities = fit.probabilities(x_rest)
    groups = [str(c) for c in probabilities.argmax(1)]
    covered = None
    if strategy in LATENT_STRATEGIES:  # each pool image's distance to the nearest labelled one (the run's index)
        squared = (x_rest ** 2).sum(1)[:, None] - 2 * x_rest @ x_labelled.T + (x_labelled ** 2).sum(1)[None]
        covered = np.sqrt(np.maximum(squared, 0)).min(1)
    per_class = len(x_labelled) / probabilities.shape[1]
    chosen, _ = choose(strategy, step, margins(probabilities), entropies(probabilities), groups, True, x_rest, covered,
                       per_class)
    return chosen


def curve(strategy: str, data: dict, seed: int, step: int, budget: int, name: str) -> list[float]:
    """Test accuracy after each round: 2 labels per class, then ``step`` more a round up to ``budget`` (kept in
    ``DONE``: a rerun with the same settings reads it back). Two classes: entropy orders the pool as margin does
    (both are |p - 1/2|), so its curve is margin's."""
    if strategy == "entropy" and len(data["classes"]) == 2:
        strategy = "margin"
    done = DONE / f"{name}-{strategy}-{seed}-{step}-{budget}.json"
    if done.exists():
        return json.loads(done.read_text())
    x, y, k = data["x_pool"], data["y_pool"], len(data["classes"])
    rng = np.random.default_rng(seed)
    chosen = [int(i) for c in range(k) for i in rng.choice(np.flatnonzero(y == c), 2, replace=False)]
    accuracy = []
    while True:
        fit = solved_head(x[chosen], y[chosen], k, seed)
        accuracy.append(float((fit.probabilities(data["x_test"]).argmax(1) == data["y_test"]).mean()))
        if len(chosen) >= budget:
            DONE.mkdir(exist_ok=True)
            done.write_text(json.dumps(accuracy))
            return accuracy
        rest = np.setdiff1d(np.arange(len(x)), chosen)
        chosen += [int(rest[i]) for i in picks(strategy, fit, x[rest], x[chosen], min(step, budget - len(chosen)),
                                               rng)]


def labels_needed(counts: list[int], accuracy: np.ndarray, target: float) -> int | None:
    return next((n for n, a in zip(counts, accuracy) if a >= target - 1e-9), None)


def summary(name: str, counts: list[int], mean: dict[str, np.ndarray], at: int) -> dict:
    """Random's accuracy at ``at`` labels and the labels each strategy needs to reach it."""
    target = float(mean["random"][counts.index(at)])
    row = {"set": name, "n": at, "random": target}
    for strategy in STRATEGIES[1:]:
        needed = labels_needed(counts, mean[strategy], target)
        row[strategy] = None if needed is None else {"labels": needed, "share": needed / at}
    return row


def curve_table(name: str, data: dict, counts: list[int], mean: dict, spread: dict, seeds: int) -> dict:
    columns = [{"key": "strategy", "label": "labels"},
               *[{"key": f"n{n}", "label": str(n), "format": "{:.3f}"} for n in counts]]
    rows = [{"strategy": s, **{f"n{n}": float(a) for n, a in zip(counts, mean[s])}} for s in STRATEGIES]
    return {"id": f"curve_{name}", "caption": (
        f"{name}: test accuracy (mean of {seeds} seeds) against labels, pool {len(data['y_pool'])} images, test "
        f"{len(data['y_test'])}, {len(data['classes'])} classes; largest standard deviation over seeds "
        + ", ".join(f"{s} {float(spread[s].max()):.3f}" for s in STRATEGIES) + "."), "columns": columns, "rows": rows}


def plot(curves: dict) -> None:
    from cnnkit.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (name, (counts, mean)) in zip(axes[0], curves.items()):
        for strategy in STRATEGIES:
            ax.plot(counts, mean[strategy], marker=".", label=strategy, linewidth=2 if strategy == "random" else 1,
                    color="black" if strategy == "random" else None)
        ax.set_title(name)
        ax.set_xlabel("labels")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--sealions", type=Path, default=SEALIONS.default)
    parser.add_argument("--sets", default="hymenoptera,sealions", help="of hymenoptera, sealions, digits")
    parser.add_argument("--seeds", type=int, default=3)
    add_option(parser, "suggest_real")
    args = parser.parse_args()
    names = args.sets.split(",")
    if ("hymenoptera" in names and HYMENOPTERA.missing(args.hymenoptera, "--hymenoptera")) or \
            ("sealions" in names and SEALIONS.missing(args.sealions, "--sealions", ("patches/train", "patches/test"))):
        return
    model, preprocessing = lite0()
    curves, tables, summaries = {}, [], []
    for name in names:
        start = time.perf_counter()
        data = load_set(name, args, model, preprocessing)
        print(f"{name}: features of {len(data['y_pool'])} + {len(data['y_test'])} images in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        step, budget = SETS[name]["step"], SETS[name]["budget"]
        runs = {s: np.array([curve(s, data, seed, step, budget, name) for seed in range(args.seeds)])
                for s in STRATEGIES}
        first = 2 * len(data["classes"])
        counts = [min(first + step * r, budget) for r in range(runs["random"].shape[1])]
        mean = {s: r.mean(0) for s, r in runs.items()}
        curves[name] = (counts, mean)
        tables.append(curve_table(name, data, counts, mean, {s: r.std(0) for s, r in runs.items()}, args.seeds))
        middle = counts[len(counts) // 2]
        summaries += [summary(name, counts, mean, middle), summary(name, counts, mean, budget)]
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
        for row in summaries[-2:]:
            print(row, flush=True)
    for table in tables:
        print(table["caption"])
        for row in table["rows"]:
            print(f"{row['strategy']:8s} " + " ".join(f"{v:.3f}" for k, v in row.items() if k != "strategy"))
    if args.results:
        plot(curves)
        record(args.results, "suggest_real", [{"id": "goal", "columns": SUMMARY, "rows": summaries}, *tables],
               command_line(__file__))


if __name__ == "__main__":
    main()
