"""Figures drawn with matplotlib (Agg, no display) and returned as PNG bytes: the report's, grids of images, and
the plotting machinery every other figure uses (``pyplot``, ``figure_png``)."""

from __future__ import annotations

import io
import math

import numpy as np



def pyplot():
    """matplotlib's pyplot on the Agg back-end (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def _row_percent(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1, keepdims=True)
    return 100.0 * matrix / np.maximum(totals, 1)


def confusion_matrix_png(matrix: np.ndarray, classes: list[str]) -> bytes:
    """Row-normalised confusion matrix in percent, each cell with its count; sized to stay readable at 30+ classes."""
    plt = pyplot()
    matrix = np.asarray(matrix)
    percent, n = _row_percent(matrix), len(classes)
    side = max(4.5, 0.5 * n + 2.0)
    font = float(np.clip(11 - n / 3.5, 4.5, 10))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the true class")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                color = "white" if percent[i, j] > 55 else "black"
                ax.text(j, i, f"{percent[i, j]:.0f}%\n{matrix[i, j]}", ha="center", va="center",
                        fontsize=font, color=color, linespacing=0.9)
    ax.set_xticks(range(n), classes, rotation=90 if n > 6 else 0, fontsize=font + 1)
    ax.set_yticks(range(n), classes, fontsize=font + 1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (row-normalised: % of each true class; counts below)")
    return figure_png(fig)


def roc_png(curves: dict, marks: list[tuple[str, float, float]] = ()) -> bytes:
    """ROC curves with their AUC; ``marks`` are labelled (fpr, tpr) points such as the threshold in use."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1, label="chance")
    many = len(curves) > 12
    for name, curve in curves.items():
        if curve.auc is not None:
            ax.plot(curve.fpr, curve.tpr, linewidth=1.2 if many else 1.8,
                    label=None if many else f"{name} (AUC {curve.auc:.3f})")
    for (label, fpr, tpr), marker in zip(marks, ("o", "s", "^", "D")):
        ax.plot([fpr], [tpr], marker=marker, markersize=8, linestyle="none", label=label)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC, positive class '{next(iter(curves))}'" if len(curves) == 1
                 else "ROC, one class against the rest")
    ax.legend(loc="lower right", fontsize=8)
    return figure_png(fig)


def _palette_png(png: bytes) -> bytes:
    """The PNG with 256 adaptive colours: photographs in a grid shrink about threefold, still plainly readable."""
    from PIL import Image

    picture = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


THUMBNAIL = 112  # largest side of an image in a grid: a report of photos stays under 1 MB


def thumbnail(image: np.ndarray, side: int = THUMBNAIL) -> np.ndarray:
    """(H, W, C) uint8 reduced to at most ``side`` pixels a side (smaller images are left as they are)."""
    from PIL import Image

    if max(image.shape[:2]) <= side:
        return image
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    array = np.asarray(picture)
    return array[..., None] if array.ndim == 2 else array


def image_grid_png(images: np.ndarray, captions: list[str], columns: int = 4, title: str = "") -> bytes:
    """A grid of (N, H, W, C) uint8 images, each with a caption; small images are enlarged without smoothing, large
    ones reduced to thumbnails."""
    plt = pyplot()
    n = max(len(images), 1)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, (thumbnail(i) for i in images), captions):
        gray = image.shape[-1] == 1
        ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(caption, fontsize=8)
    fig.tight_layout()
    if title:
        fig.suptitle(title, y=1.0 + 0.15 / rows)
    return _palette_png(figure_png(fig))


def training_curves_png(history: dict[str, list[float]], best_epoch: int | None = None) -> bytes:
    """Loss and accuracy per epoch, train and validation, with the epoch whose weights were kept."""
    plt = pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = history.get("epoch", [])
    for ax, kind in ((loss_ax, "loss"), (acc_ax, "acc")):
        for split, style in (("train", "-"), ("val", "-o")):
            values = history.get(f"{split}_{kind}", [])
            if any(not math.isnan(v) for v in values):
                ax.plot(epochs, values, style, markersize=3, label="train" if split == "train" else "validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.5", linestyle=":", label=f"kept (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if kind == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    loss_ax.set_title("Loss")
    acc_ax.set_title("Accuracy")
    return figure_png(fig)


def penalty_curve_png(grid: list[dict], chosen: float) -> bytes:
    """A solved head's cross-validation over the penalty grid: the mean held-out loss and accuracy of each tried C
    (log scale; a larger C is a weaker penalty), with the chosen C."""
    plt = pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    ordered = sorted(grid, key=lambda s: s["C"])
    values = [s["C"] for s in ordered]
    for ax, key, label in ((loss_ax, "cv_loss", "loss"), (acc_ax, "cv_acc", "accuracy")):
        ax.plot(values, [s.get(key, math.nan) for s in ordered], "-o", markersize=4,
                label=f"cross-validated {label}")
        ax.axvline(chosen, color="0.5", linestyle=":", label=f"chosen C={chosen:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel("C (inverse penalty strength)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    loss_ax.set_title("Held-out loss per C")
    acc_ax.set_title("Held-out accuracy per C")
    return figure_png(fig)


def tsne_png(coords: np.ndarray, labels: np.ndarray, classes: list[str], images: np.ndarray | None = None,
             thumbnails: int = 0, seed: int = 0, title: str = "") -> bytes:
    """Scatter plot by class; ``thumbnails`` images (a random sample) drawn at their points."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 7))
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    for k, name in enumerate(classes):
        chosen = labels == k
        if chosen.any():
            ax.scatter(coords[chosen, 0], coords[chosen, 1], s=12, color=cmap(k % cmap.N), label=name, alpha=0.8)
    if thumbnails and images is not None:
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage

        zoom = 28.0 / max(images.shape[1:3])
        for i in np.random.default_rng(seed).permutation(len(coords))[:thumbnails]:
            image = images[i]
            gray = image.shape[-1] == 1
            box = OffsetImage(image[..., 0] if gray else image, zoom=zoom, cmap="gray" if gray else None)
            ax.add_artist(AnnotationBbox(box, coords[i], frameon=True, pad=0.1,
                                         bboxprops={"edgecolor": cmap(int(labels[i]) % cmap.N)}))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "t-SNE of the latent vectors")
    ax.legend(fontsize=8, markerscale=1.5, loc="best")
    return figure_png(fig)


def lr_find_png(lrs: list[float], losses: list[float], smoothed: list[float], rates: dict[str, float], rule: str,
                diverged_at: int | None = None) -> bytes:
    """The learning-rate sweep: each batch's loss and the smoothed loss against the rate (log scale), the lowest
    smoothed loss before any divergence, the suggested rate (``rates[rule]``), every other rule's rate faintly, and
    where the loss diverged."""
    plt = pyplot()
    lrs, losses, smoothed = np.asarray(lrs, float), np.asarray(losses, float), np.asarray(smoothed, float)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(lrs, losses, color="0.7", linewidth=0.8, marker=".", markersize=3, label="loss of each batch")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=1.8, label="smoothed loss")
    lowest = int(np.nanargmin(smoothed[:diverged_at]))
    ax.plot([lrs[lowest]], [smoothed[lowest]], "v", color="tab:orange", markersize=8,
            label=f"lowest smoothed loss, lr {lrs[lowest]:.2g}")
    for name, rate in rates.items():
        if name != rule:
            ax.axvline(rate, color="0.55", linestyle=":", linewidth=1)
            ax.text(rate, 0.98, f" {name}", rotation=90, va="top", fontsize=7, color="0.4",
                    transform=ax.get_xaxis_transform())
    at = int(np.argmin(np.abs(np.log(lrs) - np.log(rates[rule]))))
    ax.axvline(rates[rule], color="tab:green", linestyle="--", linewidth=1.5)
    ax.plot([rates[rule]], [smoothed[at]], "o", color="tab:green", markersize=8,
            label=f"suggested lr {rates[rule]:.2g} ({rule})")
    if diverged_at is not None and np.isfinite(smoothed[diverged_at]):
        ax.plot([lrs[diverged_at]], [smoothed[diverged_at]], "x", color="tab:red", markersize=9, mew=2,
                label=f"diverged at lr {lrs[diverged_at]:.2g}")
    shown = smoothed[np.isfinite(smoothed)]
    low = min(shown.min(), np.nanmin(np.where(np.isfinite(losses), losses, np.nan)))
    ax.set_ylim(max(0.0, low - 0.05 * abs(low)), shown.max() * 1.1 if shown.max() > 0 else 1.0)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate sweep: one batch per rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return figure_png(fig)
