"""The inspection's figures, each a PNG with its legend: the filter grid, the strongest activation maps of every
stage, and heat maps over the image."""

from __future__ import annotations

import math

import numpy as np

from cnnkit.plots import figure_png, pyplot


def filter_grid(weight: np.ndarray, columns: int | None = None) -> np.ndarray:
    """The filters of a convolution, weight (out, in, kh, kw), tiled as one (rows*(kh+1)-1, columns*(kw+1)-1, in)
    array of the weights themselves: filter k at row k // columns, column k % columns, a NaN line between tiles."""
    out, channels, kh, kw = weight.shape
    columns = columns or math.ceil(math.sqrt(out))
    rows = math.ceil(out / columns)
    grid = np.full((rows * (kh + 1) - 1, columns * (kw + 1) - 1, channels), np.nan, np.float32)
    for k in range(out):
        r, c = divmod(k, columns)
        grid[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = weight[k].transpose(1, 2, 0)
    return grid


def filters_png(weight: np.ndarray, layer: str) -> bytes:
    """The filter grid: colour filters (3 input channels) as colours, grey = 0 and full colour = the largest
    |weight|; other filters per input channel in red (positive) and blue (negative), with a colour bar."""
    plt = pyplot()
    grid = filter_grid(weight)
    scale = float(np.nanmax(np.abs(grid))) or 1.0
    out, channels, kh, kw = weight.shape
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + 0.8))
    if channels == 3:
        picture = np.nan_to_num(0.5 + grid / (2 * scale), nan=1.0)
        ax.imshow(np.clip(picture, 0, 1), interpolation="nearest")
        legend = f"grey = 0; full colour = |weight| {scale:.3g}"
    else:
        shown = grid.mean(-1) if channels > 1 else grid[..., 0]
        image = ax.imshow(np.ma.masked_invalid(shown), cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.04, label="weight" + (" (mean over input channels)" if channels > 1
                                                                    else ""))
        legend = "red positive, blue negative"
    ax.axis("off")
    ax.set_title(f"{layer}: {out} filters, {kh}x{kw}, {channels} input channel(s)\n{legend}", fontsize=9)
    return figure_png(fig)


def activations_png(stages: list[dict]) -> bytes:
    """One row per stage: its strongest channels' activation maps for the image (``stages``: name, maps (k, h, w),
    channels, means), each row on its own colour scale with a colour bar."""
    plt = pyplot()
    columns = max(len(s["maps"]) for s in stages)
    fig, axes = plt.subplots(len(stages), columns + 1, figsize=(1.5 * (columns + 1), 1.7 * len(stages)),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * columns + [0.08]})
    for row, stage in zip(axes, stages):
        low, high = float(np.min(stage["maps"])), float(np.max(stage["maps"])) or 1.0
        image = None
        for ax, activation, channel, mean in zip(row, stage["maps"], stage["channels"], stage["means"]):
            image = ax.imshow(activation, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
            ax.set_title(f"ch {channel} (mean {mean:.2g})", fontsize=7)
        for ax in row[:-1]:
            ax.axis("off")
        row[0].text(-0.1, 0.5, f"{stage['name']}\n{tuple(stage['shape'])}", transform=row[0].transAxes,
                    ha="right", va="center", fontsize=7)
        fig.colorbar(image, cax=row[-1])
    fig.suptitle("Strongest activation maps of each stage (channels with the highest mean); yellow = high", fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, C) uint8 image with a [0, 1] heat map (H, W) blended over it in the jet colours: (H, W, 3) uint8."""
    from matplotlib import colormaps

    colours = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    base = image.astype(np.float32) / 255.0
    base = np.repeat(base, 3, axis=-1) if base.shape[-1] == 1 else base[..., :3]
    return np.round(255 * ((1 - alpha) * base + alpha * colours)).astype(np.uint8)


def heatmap_png(image: np.ndarray, heat: np.ndarray, title: str, legend: str, signed: bool = False) -> bytes:
    """The image, the map over it, and the map alone with its colour bar; ``signed``: red for, blue against."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    gray = image.shape[-1] == 1
    axes[0].imshow(image[..., 0] if gray else image[..., :3], cmap="gray" if gray else None, vmin=0, vmax=255)
    axes[0].set_title("image", fontsize=8)
    if signed:
        scale = float(np.abs(heat).max()) or 1.0
        axes[1].imshow(image[..., 0] if gray else image[..., :3], cmap="gray" if gray else None, vmin=0, vmax=255)
        axes[1].imshow(heat, cmap="RdBu_r", vmin=-scale, vmax=scale, alpha=0.6)
        shown = axes[2].imshow(heat, cmap="RdBu_r", vmin=-scale, vmax=scale)
    else:
        low, high = float(heat.min()), float(heat.max())
        axes[1].imshow(overlay(image, (heat - low) / ((high - low) or 1.0)))
        shown = axes[2].imshow(heat, cmap="jet", vmin=low, vmax=high if high > low else low + 1)
    axes[1].set_title("over the image", fontsize=8)
    axes[2].set_title("map", fontsize=8)
    fig.colorbar(shown, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{title}\n{legend}", fontsize=9)
    fig.tight_layout()
    return figure_png(fig)
