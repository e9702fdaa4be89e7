"""The rules of `cnnkit suggest` against random labelling, simulated: how many labels each needs for the accuracy
that random labelling reaches with `--budget` labels (the figure docs/suggest.md quotes).

A simulation of the rules in `cnnkit.suggest.choose` (margin, entropy, k-centre greedy, and hybrid as
`cnnkit.suggest.rank` applies them), not of the whole command: standardised pixels stand in for the latent space and a
logistic regression, retrained after every round, for the run. Start: 2 labels per class; then `--step` labels a
round, picked by each rule with class balance on; accuracy on a held-out 30%, averaged over `--seeds` seeds.

    python benchmarks/suggest_rules.py              # about a minute of one CPU core

Data: scikit-learn's digits (1,797 8x8 images, shipped with scikit-learn); nothing to download.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from cnnkit.suggest.choose import balanced_first, entropies, kcenter_greedy, margins, spaced_first

RULES = ("random", "margin", "entropy", "kcenter", "hybrid")
SPACING = 0.5  # as cnnkit.suggest.rank.SPACING


def picks(rule: str, probabilities: np.ndarray, pool: np.ndarray, labelled: np.ndarray, step: int,
          rng: np.random.Generator) -> list[int]:
    """Indices into ``pool`` of the next ``step`` images to label."""
    groups = [str(g) for g in probabilities.argmax(axis=1)]
    uncertain = margins(probabilities)
    if rule == "random":
        return list(rng.choice(len(pool), step, replace=False))
    if rule == "margin":
        return balanced_first(np.argsort(uncertain, kind="stable"), groups, step)
    if rule == "entropy":
        return balanced_first(np.argsort(-entropies(probabilities), kind="stable"), groups, step)
    covered = np.sqrt(((pool[:, None, :] - labelled[None]) ** 2).sum(-1)).min(axis=1)
    if rule == "kcenter":
        return kcenter_greedy(pool, step, covered, groups)[0]
    spacing = SPACING * float(np.median(covered))
    return spaced_first(np.argsort(uncertain, kind="stable"), pool, covered, step, spacing, groups)[0]


def curve(rule: str, features: np.ndarray, labels: np.ndarray, seed: int, step: int, budget: int) -> list[tuple]:
    """(labels used, test accuracy) after each round."""
    x_pool, x_test, y_pool, y_test = train_test_split(features, labels, test_size=0.3, random_state=seed,
                                                      stratify=labels)
    rng = np.random.default_rng(seed)
    chosen = [int(i) for c in np.unique(y_pool) for i in rng.choice(np.flatnonzero(y_pool == c), 2, replace=False)]
    points = []
    while True:
        model = LogisticRegression(max_iter=2000).fit(x_pool[chosen], y_pool[chosen])
        points.append((len(chosen), model.score(x_test, y_test)))
        if len(chosen) >= budget:
            return points
        rest = np.setdiff1d(np.arange(len(x_pool)), chosen)
        new = picks(rule, model.predict_proba(x_pool[rest]), x_pool[rest], x_pool[chosen], step, rng)
        chosen += [int(rest[i]) for i in new]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--step", type=int, default=10, help="labels per round")
    parser.add_argument("--budget", type=int, default=200, help="labels at the end (N)")
    args = parser.parse_args()
    features, labels = load_digits(return_X_y=True)
    features = StandardScaler().fit_transform(features)
    mean = {}
    for rule in RULES:
        runs = [curve(rule, features, labels, seed, args.step, args.budget) for seed in range(args.seeds)]
        counts = [n for n, _ in runs[0]]
        mean[rule] = np.mean([[accuracy for _, accuracy in run] for run in runs], axis=0)
    print("labels   " + " ".join(f"{n:5d}" for n in counts))
    for rule, accuracy in mean.items():
        print(f"{rule:8s} " + " ".join(f"{a:5.3f}" for a in accuracy))
    target = mean["random"][-1]
    for rule, accuracy in mean.items():
        needed = next((n for n, a in zip(counts, accuracy) if a >= target), None)
        share = f"{needed / counts[-1]:.2f} N" if needed else "not reached"
        print(f"{rule}: random's accuracy at {counts[-1]} labels ({target:.3f}) with {needed} labels ({share})")


if __name__ == "__main__":
    main()
