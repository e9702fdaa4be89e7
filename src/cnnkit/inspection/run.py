"""``cnnkit inspect``: one image through a run's network, every view of it written into a folder of its own."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cnnkit._io import replace_folder, write_bytes, write_json, write_text
from cnnkit.config import InspectConfig
from cnnkit.data.preprocess import normalize
from cnnkit.errors import ConfigError, OutputError
from cnnkit.inspection.figures import activations_png, filters_png, heatmap_png
from cnnkit.inspection.page import render_page
from cnnkit.run import RunFolder
from cnnkit.run.lock import locked_if_inside
from cnnkit.run.tasks import require

log = logging.getLogger("cnnkit")


def open_run(run_dir: str | Path):
    """The run's torch predictor (its network in eval mode); a baseline run has no network to look into."""
    from cnnkit.inference.base import Predictor

    run = RunFolder(run_dir)
    require(run.read_record().kind, "inspect", run.path)
    predictor = Predictor.load(run_dir, backend="torch")
    if getattr(predictor, "model", None) is None:
        raise ConfigError(f"{run_dir} is a baseline run: it has no network to inspect. Inspect a CNN run.")
    return predictor


def _class_index(predictor, label: str | None) -> int | None:
    if label is None:
        return None
    if label not in predictor.classes:
        raise ConfigError(f"`label` {label!r} is not a class of this run; its classes: "
                          f"{', '.join(predictor.classes)}.")
    return predictor.classes.index(label)


def _stages(predictor, image: np.ndarray, channels: int) -> list[dict]:
    import torch

    from cnnkit.inspection.network import stage_outputs, strongest_channels

    x = normalize(torch.from_numpy(np.array(image[None])).permute(0, 3, 1, 2).float() / 255.0, predictor.preprocessing)
    stages = []
    for name, activation in stage_outputs(predictor.model, x.contiguous()):
        top, means = strongest_channels(activation, channels)
        stages.append({"name": name, "shape": list(activation.shape), "channels": top, "means": means,
                       "maps": activation[top].float().numpy()})
    return stages


def _attributions(predictor, image: np.ndarray, targets: dict[str, int], config: InspectConfig) -> dict:
    """Grad-CAM for every target (predicted, true), occlusion and integrated gradients for the predicted class."""
    from cnnkit.inspection.attribution import (
        grad_cam,
        integrated_gradients,
        occlusion,
        occlusion_window,
    )
    from cnnkit.inspection.network import ScoreModel

    multi = predictor.multi_label
    logits = ScoreModel(predictor.model, predictor.preprocessing, "logits", multi)
    probabilities = ScoreModel(predictor.model, predictor.preprocessing, "probabilities", multi)
    fill = tuple(predictor.preprocessing.mean)  # a plain image of the training images' mean colour
    cams = grad_cam(logits, np.repeat(image[None], len(targets), 0), list(targets.values()))
    predicted = targets["predicted"]
    window = config.window or occlusion_window(predictor.preprocessing.image_size)
    ig, delta = integrated_gradients(logits, image, predicted, config.ig_steps, fill)
    return {"grad_cam": dict(zip(targets, cams)), "occlusion": occlusion(probabilities, image, predicted, window, fill),
            "window": window, "integrated_gradients": ig, "ig_error": delta}


def _figures(predictor, image, stages, views, targets) -> dict[str, tuple[bytes, str]]:
    """name -> (PNG, caption)."""
    from cnnkit.inspection.network import first_convolution

    classes = predictor.classes
    layer, conv = first_convolution(predictor.model)
    figures = {"filters": (filters_png(conv.weight.detach().float().numpy(), layer),
                           f"The first convolution's filters ({layer}), as the network applies them to the "
                           "standardised image.")}
    figures["activations"] = (activations_png(stages), "For each stage, the channels that respond most to this image.")
    for role, target in targets.items():
        figures[f"gradcam_{role}"] = (heatmap_png(
            image, views["grad_cam"][role], f"Grad-CAM, {role} class {classes[target]!r}",
            "red = regions whose features raise this class's score most (scaled to [0, 1])"),
            f"Where the last feature map holds evidence for the {role} class {classes[target]!r}.")
    name = classes[targets["predicted"]]
    figures["occlusion"] = (heatmap_png(
        image, views["occlusion"], f"Occlusion, class {name!r} ({views['window']}px grey square)",
        "drop of the class's probability when the square covering a pixel is greyed (red = needed)", signed=True),
        "Hiding these regions lowers the predicted class's probability (red) or raises it (blue).")
    figures["integrated_gradients"] = (heatmap_png(
        image, views["integrated_gradients"], f"Integrated gradients, class {name!r}",
        f"contribution of each pixel to the logit from a plain mean-colour image (red for, blue against; "
        f"completeness error {views['ig_error']:.2g})", signed=True),
        "Each pixel's share of the predicted class's logit, from Captum's integrated gradients.")
    return figures


def inspect_image(run_dir: str | Path, image_path: str | Path, out: str | Path,
                  config: InspectConfig | None = None) -> dict:
    """Write into ``out`` (replaced as a whole; under the run's lock when inside the run): ``filters.png``,
    ``activations.png``, ``gradcam_predicted.png`` (and ``gradcam_true.png`` with ``label``), ``occlusion.png``,
    ``integrated_gradients.png``, ``inspect.json`` and a self-contained ``inspect.html``. Returns what
    ``inspect.json`` holds."""
    config = config or InspectConfig()
    predictor = open_run(run_dir)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "inspect.json").exists():
        raise OutputError(f"{out} exists and is not an inspect folder (it has no inspect.json); choose a new `out`.")
    true = _class_index(predictor, config.label)
    side = min(predictor.preprocessing.image_size)
    if config.window is not None and config.window > side:
        raise ConfigError(f"Expected `window` <= {side} (the run's input side). Received: window={config.window}")
    image = predictor.load_images([image_path])[0]
    probabilities = predictor.predict_arrays(image[None])[0]
    targets = {"predicted": int(np.argmax(probabilities))}
    if true is not None:
        targets["true"] = true
    stages = _stages(predictor, image, config.maps_per_stage)
    views = _attributions(predictor, image, targets, config)
    figures = _figures(predictor, image, stages, views, targets)
    summary = _summary(run_dir, image_path, predictor, probabilities, targets, stages, views)

    def fill(folder: Path) -> None:
        for name, (png, _) in figures.items():
            write_bytes(folder / f"{name}.png", png)
        write_json(folder / "inspect.json", summary)
        write_text(folder / "inspect.html", render_page(summary, figures))

    with locked_if_inside(run_dir, out):  # the default, RUN/inspect/IMAGE
        replace_folder(out, fill)
    return summary


def _peak(heat: np.ndarray) -> list[int]:
    return [int(v) for v in np.unravel_index(int(np.argmax(heat)), heat.shape)]


def _summary(run_dir, image_path, predictor, probabilities, targets, stages, views) -> dict:
    classes = predictor.classes
    return {
        "run": str(Path(run_dir).resolve()), "image": str(image_path),
        "input_size": list(predictor.preprocessing.image_size),
        "predicted": classes[targets["predicted"]], "true": classes[targets["true"]] if "true" in targets else None,
        "probabilities": {c: float(p) for c, p in zip(classes, probabilities)},
        "stages": [{k: s[k] for k in ("name", "shape", "channels", "means")} for s in stages],
        "grad_cam_peak": {role: _peak(views["grad_cam"][role]) for role in targets},  # (row, column)
        "occlusion": {"window": views["window"], "largest_drop": float(views["occlusion"].max()),
                      "peak": _peak(views["occlusion"])},
        "integrated_gradients": {"completeness_error": views["ig_error"]},
    }
