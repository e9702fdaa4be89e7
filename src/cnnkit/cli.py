"""The ``cnnkit`` command line: one thin function per command, heavy imports inside them."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from cnnkit.errors import CnnkitError

log = logging.getLogger("cnnkit")


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _train_config(args: argparse.Namespace):
    from cnnkit.config import TrainConfig, parse_options, parse_size

    options = {**parse_options(args.head.split(",") if args.head else None), **parse_options(args.option)}
    return TrainConfig(
        model=args.model, model_options=options, init=args.init,
        image_size=parse_size(args.image_size) if args.image_size else None, channels=args.channels,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, scheduler=args.scheduler,
        early_stopping=args.early_stopping, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
        seed=args.seed, skip_bad=args.skip_bad, accelerator=args.accelerator, augment=args.augment,
        mixup=args.mixup, cutmix=args.cutmix, balance=args.balance, pretrained=args.pretrained, weights=args.weights,
        strategy=args.strategy, unfreeze=args.unfreeze, finetune_epochs=args.finetune_epochs,
        finetune_lr=args.finetune_lr, feature_cache=not args.no_cache, cache_views=args.cache_views,
    )


def _scores(m: dict) -> str:
    auc = "" if m.get("auc") is None else f"  AUC {m['auc']:.4f}"
    return (f"accuracy {m['accuracy']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
            f"macro F1 {m['macro_f1']:.4f}{auc}  (n={m['n']})")


def _phases(run_dir) -> list[tuple[str, str]]:
    """For transfer and fine-tuning: the phases and the feature cache, one line."""
    from cnnkit.run import RunFolder

    config = RunFolder(run_dir).read_config()
    phases = config.get("result", {}).get("phases", [])
    if config.get("training", {}).get("strategy", "scratch") == "scratch":
        return []
    text = " + ".join(f"{p['name']} {p['epochs_run']} epochs" for p in phases)
    cache = config.get("feature_cache") or {}
    if cache.get("used"):
        text += f"; feature cache: {cache['computed']} computed, {cache['reused']} reused"
    return [("Phases", text)]


def _print_result(result) -> None:
    """The one-screen summary at the end of training."""
    val = result.val_metrics
    rows = [("Run folder", str(result.run_dir)),
            ("Best epoch", f"{result.best_epoch + 1} of {result.epochs_run} (its weights are kept), "
                           f"trained in {result.train_seconds:.1f} s"),
            *_phases(result.run_dir),
            ("Validation", f"loss {result.best_val_loss:.4f}"
                           + (f"  accuracy {val['val_acc']:.4f}" if "val_acc" in val else ""))]
    if not result.test_metrics:
        rows.append(("Test", "No test split (the data folder has train/ but no test/): nothing held out was scored; "
                             "use `cnnkit evaluate RUN --data FOLDER`"))
    else:
        m = result.test_metrics
        rows.append(("Test", _scores(m)))
        worst = min(m["per_class"].items(), key=lambda item: (item[1]["support"] == 0, item[1]["recall"]))
        rows.append(("Weakest class", f"{worst[0]}: recall {worst[1]['recall']:.3f} of {worst[1]['support']} images"))
        rows.append(("Report", str(result.report)))
    rows.append(("Next", f"cnnkit predict {result.run_dir} IMAGES...  |  cnnkit evaluate {result.run_dir} --data DIR"))
    print()
    for name, text in rows:
        print(f"{name:<14}{text}")


def cmd_train(args: argparse.Namespace) -> None:
    from cnnkit.training.fit import resume, train

    if args.resume:
        _print_result(resume(args.resume, epochs=args.epochs, progress=not args.no_progress))
        return
    if not args.data:
        raise CnnkitError("cnnkit train needs a DATA folder (or --resume RUN).")
    out = args.out or Path("runs") / f"{Path(args.data).resolve().name}-{args.model}"
    args.epochs = args.epochs or 20
    _print_result(train(args.data, out, _train_config(args), progress=not args.no_progress))


def cmd_demo(args: argparse.Namespace) -> None:
    from cnnkit.data.builtin import export_dataset
    from cnnkit.training.fit import train

    aerial = args.dataset == "aerial"
    args.model = args.model or ("patch_cnn" if aerial else "vgg_small")
    args.augment = args.augment or ("flip=hv,rotate=180" if aerial else None)
    out = Path(args.out or f"runs/demo-{args.dataset}")
    data = out / "dataset"
    if (out / "config.json").exists():
        raise CnnkitError(f"{out} already holds a run; pass --out NEW_FOLDER.")
    if not data.exists():
        log.info("Writing the built-in dataset %r to %s", args.dataset, data)
        export_dataset(args.dataset, data, seed=args.seed)
    _print_result(train(data / "patches" if aerial else data, out, _train_config(args),
                        progress=not args.no_progress))
    if aerial:  # the patch classifier at work: count the objects of a whole scene
        from cnnkit.scan.photo import scan_photo

        scene, dots = data / "scenes" / "scene_0.png", data / "scenes" / "scene_0-dots.csv"
        summary = scan_photo(out, scene, out / "scan-scene_0", dots=dots)
        print(f"\nScanned {scene} (exact: {summary['exact']}, {summary['seconds']:.2f} s); counts against the dots:")
        for name, r in summary["dots"].items():
            print(f"  {name:<8} detected {r['detected']:3d}  dots {r['dots']:3d}  recall {r['recall']:.2f}")
        print(f"Heatmaps and detections in {out / 'scan-scene_0'}")


def cmd_predict(args: argparse.Namespace) -> None:
    from cnnkit.inference import Predictor

    predictions = Predictor.load(args.run).predict(args.images, tta=args.tta)
    if args.json:
        print(json.dumps([{"path": p.path, "class": p.label, "probability": p.probability,
                           "probabilities": p.probabilities} for p in predictions], indent=2))
        return
    width, label_width = max(len(p.path) for p in predictions), max(len(p.label) for p in predictions)
    for p in predictions:
        print(f"{p.path.ljust(width)}  {p.label.ljust(label_width)}  {p.probability:.4f}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from cnnkit.evaluation.evaluate import evaluate_run

    evaluation = evaluate_run(args.run, data=args.data, out=args.out, threshold=args.threshold,
                              choose=args.choose_threshold, shared_classes=args.shared_classes, tta=args.tta,
                              knn=args.knn)
    m = evaluation.metrics
    print(f"{m['data']}: {_scores(m)}")
    if m["tta"]:
        t = m["tta"]
        print(f"With TTA x{t['n']}; without: accuracy {t['accuracy_without']:.4f}  balanced accuracy "
              f"{t['balanced_accuracy_without']:.4f}; time {t['time_ratio']:.1f}x "
              f"({m['inference_ms_per_image']:.2f} vs {t['ms_per_image_without']:.2f} ms per image)")
    if m.get("knn"):
        print(f"Latent k-NN (k={m['knn']['k']}): {_scores({**m['knn'], 'n': m['n']})}")
    if m["threshold"]:
        t = m["threshold"]
        print(f"Decision: '{t['positive_class']}' when its probability >= {t['value']:.4f} ({t['source']}; "
              f"stored in the run)")
    width = max(len(c) for c in m["classes"])
    print(f"{'class'.ljust(width)}  precision  recall      f1  support")
    for name, s in m["per_class"].items():
        print(f"{name.ljust(width)}  {s['precision']:9.3f}  {s['recall']:6.3f}  {s['f1']:6.3f}  {s['support']:7d}")
    for pair in m["most_confused"][:3]:
        print(f"confused: {pair['true']} -> {pair['predicted']} ({pair['count']} images)")
    print(f"Report: {evaluation.report_path}  (metrics: {evaluation.metrics_path})")


def cmd_features(args: argparse.Namespace) -> None:
    from cnnkit.inference import Predictor
    from cnnkit.latent.features import folder_features, save_features

    arrays = folder_features(Predictor.load(args.run), args.data)
    save_features(args.out, arrays)
    print(f"Wrote {args.out}: {arrays['features'].shape[0]} vectors of dimension {arrays['features'].shape[1]} "
          "(arrays: features, paths, labels, classes)")


def cmd_similar(args: argparse.Namespace) -> None:
    import numpy as np

    from cnnkit._io import write_bytes
    from cnnkit.evaluation.figures import image_grid_png
    from cnnkit.inference import Predictor
    from cnnkit.latent.index import run_index

    predictor = Predictor.load(args.run)
    index = run_index(args.run, predictor, args.metric, args.index)
    query = predictor.load_images([args.query])
    distances, ids = index.search(predictor.embed_arrays(query), args.k)
    neighbours = [index.paths[i] for i in ids[0]]
    if index.recall_at_10 is not None:
        print(f"Approximate index ({args.index}): recall@10 against exact search {index.recall_at_10:.3f}")
    for rank, (i, d) in enumerate(zip(ids[0], distances[0]), 1):
        print(f"{rank:3d}  {d:10.4f}  {predictor.classes[index.labels[i]]:<12}  {index.root / index.paths[i]}")
    images = [query[0], *predictor.load_images([index.root / p for p in neighbours])]
    captions = ["query"] + [f"{predictor.classes[index.labels[i]]}\n{args.metric} {d:.3f}"
                            for i, d in zip(ids[0], distances[0])]
    write_bytes(args.out, image_grid_png(np.stack(images), captions, columns=min(len(images), 6)))
    print(f"Grid written to {args.out}")


def cmd_tsne(args: argparse.Namespace) -> None:
    import numpy as np

    from cnnkit._io import write_bytes
    from cnnkit.data.prepare import load_folder, load_run_split
    from cnnkit.inference import Predictor
    from cnnkit.latent.tsne import tsne_coordinates, tsne_png

    predictor = Predictor.load(args.run)
    if args.data:
        arrays = load_folder(args.data, predictor.classes, predictor.preprocessing, shared_only=True)[0]
        images, labels = arrays.images, arrays.labels
    else:
        parts = [load_run_split(args.run, s, predictor.classes, predictor.preprocessing) for s in ("train", "val", "test")]
        images = np.concatenate([p.images for p in parts])
        labels = np.concatenate([p.labels for p in parts])
    coords = tsne_coordinates(predictor.embed_arrays(images), seed=args.seed)
    write_bytes(args.out, tsne_png(coords, labels, predictor.classes, images, args.thumbnails, args.seed))
    print(f"t-SNE of {len(coords)} images written to {args.out}")


def cmd_baseline(args: argparse.Namespace) -> None:
    from cnnkit.baselines.fit import train_baseline
    from cnnkit.config import parse_size

    out = args.out or Path("runs") / f"{Path(args.data).resolve().name}-baseline-{args.method}"
    result = train_baseline(args.data, out, args.method, image_size=parse_size(args.image_size) if args.image_size
                            else None, channels=args.channels, val_fraction=args.val_fraction,
                            test_fraction=args.test_fraction, seed=args.seed, skip_bad=args.skip_bad, folds=args.folds)
    print(f"Run folder    {result.run_dir}")
    print(f"CV accuracy   {result.val_metrics['val_acc']:.4f} (train+val, {args.folds}-fold at most), fitted in "
          f"{result.train_seconds:.1f} s")
    if result.test_metrics:
        print(f"Test          {_scores(result.test_metrics)}")
        print(f"Report        {result.report}")


def cmd_scan(args: argparse.Namespace) -> None:
    from cnnkit.scan.photo import scan_photo

    summary = scan_photo(args.run, args.photo, args.out, stride=args.stride, threshold=args.threshold,
                         min_distance=args.min_distance, ignore=tuple(args.ignore) if args.ignore else None,
                         method=args.method, scale=args.scale, tile=args.tile, dots=args.dots, radius=args.radius)
    print(f"Scanned {args.photo} ({summary['photo_size'][0]}x{summary['photo_size'][1]} after scale "
          f"{summary['scale']}) with {summary['method']} windows of {summary['window'][0]}x{summary['window'][1]} "
          f"every {summary['stride']} px ({'exact' if summary['exact'] else 'approximate at window borders'}) in "
          f"{summary['seconds']:.2f} s, peak memory {summary['peak_memory_mb']:.0f} MB")
    print("Counts: " + ", ".join(f"{c} {n}" for c, n in summary["counts"].items()))
    if summary["dots"]:
        for name, r in summary["dots"].items():
            p = "n/a" if r["precision"] is None else f"{r['precision']:.2f}"
            rc = "n/a" if r["recall"] is None else f"{r['recall']:.2f}"
            print(f"  {name:<16} detected {r['detected']:4d}  dots {r['dots']:4d}  error {r['count_error']:+4d}  "
                  f"precision {p}  recall {rc}")
    print(f"Heatmaps, counts.json, detections.csv and detections.png in {args.out}")


def cmd_compare(args: argparse.Namespace) -> None:
    from cnnkit.evaluation.compare import compare_runs, render_compare_html, render_compare_text
    from cnnkit._io import write_text

    rows = compare_runs(args.runs)
    print(render_compare_text(rows))
    write_text(args.out, render_compare_html(rows))
    print(f"Written to {args.out}")


def cmd_augment_preview(args: argparse.Namespace) -> None:
    from cnnkit.augment.preview import augment_preview
    from cnnkit.config import parse_size

    size = parse_size(args.image_size) if args.image_size else None
    path = augment_preview(args.data, args.augment, args.out, per_class=args.per_class, copies=args.copies,
                           image_size=size, seed=args.seed)
    print(f"Wrote {path}: each row is one original image (left) and {args.copies} augmented copies")


def cmd_summary(args: argparse.Namespace) -> None:
    from cnnkit.config import parse_options, parse_size

    target = Path(args.model)
    if target.is_dir():
        from cnnkit.inference import build_model_from_config
        from cnnkit.models.summary import summary
        from cnnkit.run import RunFolder

        config = RunFolder(target).read_config()
        shape = (config["preprocessing"]["channels"], *config["preprocessing"]["image_size"])
        summary(build_model_from_config(config), tuple(shape), print_fn=print)
        return
    from cnnkit.models.summary import summary

    shape = parse_size(args.input) if args.input else None
    if shape is not None and len(shape) != 3:
        raise CnnkitError(f"--input takes CxHxW, for example 1x32x32. Received: {args.input!r}")
    summary(args.model, shape, num_classes=args.classes, print_fn=print, strategy=args.strategy,
            unfreeze=args.unfreeze, **parse_options(args.option))


def cmd_datasets(args: argparse.Namespace) -> None:
    from cnnkit.data.builtin import describe_dataset, export_dataset, list_datasets

    if args.action == "list":
        for name in list_datasets():
            print(f"{name:10s}  {describe_dataset(name)}")
        return
    if not args.name or not args.dir:
        raise CnnkitError("Usage: cnnkit datasets export NAME DIR")
    counts = export_dataset(args.name, args.dir, seed=args.seed, balanced=args.balanced, size=args.size)
    print(f"Wrote {sum(counts.values())} images in {len(counts)} classes to {args.dir}: "
          + ", ".join(f"{c} {n}" for c, n in counts.items()))


def cmd_models(args: argparse.Namespace) -> None:
    from cnnkit.models import list_models, model_options
    from cnnkit.models._registry import get_model_entry

    for name in list_models():
        options = ", ".join(f"{k}={v}" for k, v in model_options(name).items())
        print(f"{name:12s}  {get_model_entry(name).description}\n{'':12s}  options: {options}")
    print("Any timm architecture works too, as a backbone with a new head (options: dropout, hidden); with "
          "--pretrained, efficientnet_lite0 needs no download.")


def _add_training_options(p: argparse.ArgumentParser, default_epochs: int) -> None:
    from_scratch = p.add_argument_group("model and training")
    from_scratch.add_argument("--model", default="simple_cnn", help="registered model name (see `cnnkit models`)")
    from_scratch.add_argument("--option", action="append", metavar="NAME=VALUE",
                              help="model option, repeatable (e.g. batch_norm=false, filters=16,32)")
    from_scratch.add_argument("--init", default="default", choices=["default", "kaiming", "xavier"])
    from_scratch.add_argument("--epochs", type=int, default=default_epochs,
                              help=f"maximum epochs (default {default_epochs or 20}); with --resume, the new total")
    from_scratch.add_argument("--batch-size", type=int, default=32)
    from_scratch.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw", "rmsprop", "adagrad"])
    from_scratch.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    from_scratch.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    from_scratch.add_argument("--weight-decay", type=float, default=0.0)
    from_scratch.add_argument("--scheduler", default="cosine", choices=["none", "cosine", "step", "plateau"])
    from_scratch.add_argument("--early-stopping", type=int, default=10, metavar="PATIENCE",
                              help="epochs without a lower validation loss before stopping; 0 turns it off")
    from_scratch.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, mps")
    transfer = p.add_argument_group("pretrained backbones (any timm model; efficientnet_lite0 works offline)")
    transfer.add_argument("--pretrained", action="store_true", help="start from ImageNet weights")
    transfer.add_argument("--weights", metavar="FILE", help="backbone weights from a local safetensors or state-dict "
                                                            "file (implies --pretrained)")
    transfer.add_argument("--strategy", default="auto", choices=["auto", "scratch", "transfer", "finetune"],
                          help="transfer: frozen backbone, new head; finetune: then unfreeze (default: transfer with "
                               "--pretrained, else scratch)")
    transfer.add_argument("--head", metavar="SPEC", help='the new head, e.g. "dropout=0.5,hidden=0" (default '
                                                         'dropout=0.2, no hidden layer)')
    transfer.add_argument("--unfreeze", type=int, metavar="N", help="finetune: the last N backbone stages (default all)")
    transfer.add_argument("--finetune-epochs", type=int, default=5, help="finetune: epochs after the head's (5)")
    transfer.add_argument("--finetune-lr", type=float, help="finetune: learning rate of the backbone (default lr/10)")
    transfer.add_argument("--no-cache", action="store_true", help="frozen backbone: run it every epoch, no cache")
    transfer.add_argument("--cache-views", type=int, metavar="K",
                          help="with --augment and a frozen backbone: cache K views per image (default: no cache)")
    augment = p.add_argument_group("augmentation and imbalance")
    augment.add_argument("--augment", metavar="SPEC",
                         help='random transforms while training, e.g. "flip,rotate=15,translate=0.1,noise=0.05" '
                              "(see the README for names and ranges)")
    augment.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA", help="mixup with Beta(ALPHA, ALPHA)")
    augment.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA", help="CutMix with Beta(ALPHA, ALPHA)")
    augment.add_argument("--balance", default="none", choices=["none", "oversample", "weights"],
                         help="imbalanced classes: oversample rare ones, or weight the loss by class")
    data = p.add_argument_group("data")
    data.add_argument("--image-size", help="HxW or one side; default: the model's, else the data's median (16..64)")
    data.add_argument("--channels", type=int, choices=[1, 3], help="default: 1 if all images are grayscale")
    data.add_argument("--val-fraction", type=float, default=0.15)
    data.add_argument("--test-fraction", type=float, default=0.15)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--skip-bad", action="store_true",
                      help="leave out unreadable images (listed in a warning) instead of stopping")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnkit", description="Convolutional image classifiers for scarce data.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="train and evaluate a CNN (vgg_small) on a built-in dataset (no download); "
                                    "aerial: a patch_cnn, then a scan of a whole scene")
    p.add_argument("--dataset", default="wafers", choices=["wafers", "digits", "aerial"])
    p.add_argument("--out", help="run folder (default runs/demo-DATASET)")
    _add_training_options(p, default_epochs=30)
    p.set_defaults(func=cmd_demo, model=None)

    p = sub.add_parser("train", help="train on DATA (root/<class>/* or root/{train,val,test}/<class>/*)")
    p.add_argument("data", nargs="?", help="data folder")
    p.add_argument("--out", help="run folder to create (default runs/DATA-MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last checkpoint")
    _add_training_options(p, default_epochs=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="class and probability for each image")
    p.add_argument("run", help="run folder")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--tta", type=int, default=1, metavar="N",
                   help="average N augmented versions of each image (the run's --augment transforms)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics on the run's test split or on --data")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="another labelled folder (its test/ split if it has one)")
    p.add_argument("--out", help="folder for metrics.json and report.html (default: the run, or RUN/eval-FOLDER "
                                 "for --data)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="two classes: predict the second class when its probability >= T; stored in the run")
    p.add_argument("--choose-threshold", action="store_true",
                   help="two classes: store the threshold closest to (0, 1) on the validation split's ROC")
    p.add_argument("--shared-classes", action="store_true",
                   help="with --data whose classes differ from the model's: evaluate on the shared classes only")
    p.add_argument("--tta", type=int, default=1, metavar="N",
                   help="test-time augmentation: N versions per image; the report shows scores with and without")
    p.add_argument("--knn", type=int, default=0, metavar="K",
                   help="also classify by the K nearest training images in the latent space, beside the head")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("features", help="latent vectors (the layer before the classifier) of a folder's images")
    p.add_argument("run", help="run folder")
    p.add_argument("data", help="class-folder tree (labels from folder names) or a folder of images")
    p.add_argument("--out", default="features.npz", help=".npz with features, paths, labels, classes")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("similar", help="the training images nearest to a query in the latent space")
    p.add_argument("run", help="run folder")
    p.add_argument("query", help="query image")
    p.add_argument("-k", type=int, default=5, help="neighbours (default 5)")
    p.add_argument("--metric", default="l2", choices=["l2", "cosine"])
    p.add_argument("--index", default="flat", choices=["flat", "ivf"],
                   help="flat: exact search; ivf: approximate, for large collections (its recall is printed)")
    p.add_argument("--out", default="similar.png", help="grid PNG, query first (default similar.png)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("tsne", help="2-D t-SNE map of the latent vectors, coloured by class")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="labelled folder (default: the run's train, val and test images)")
    p.add_argument("--out", default="tsne.png")
    p.add_argument("--thumbnails", type=int, default=0, metavar="N", help="draw N images at their points")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tsne)

    p = sub.add_parser("augment-preview", help="a grid of images and augmented copies, to check labels survive")
    p.add_argument("data", help="data folder (root/<class>/* or root/{train,val,test}/<class>/*)")
    p.add_argument("--augment", required=True, metavar="SPEC", help="the spec to preview")
    p.add_argument("--out", default="augment-preview.png", help="PNG to write (default augment-preview.png)")
    p.add_argument("--per-class", type=int, default=2, help="originals per class (default 2)")
    p.add_argument("--copies", type=int, default=5, help="augmented copies per original (default 5)")
    p.add_argument("--image-size", help="HxW or one side (default: as training would choose)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_augment_preview)

    p = sub.add_parser("baseline", help="a classical baseline on the same split: k-NN or softmax on pixels, or "
                                        "hand-crafted features")
    p.add_argument("data", help="data folder (as for train)")
    p.add_argument("--method", required=True, choices=["knn", "linear", "handcrafted"])
    p.add_argument("--out", help="run folder (default runs/DATA-baseline-METHOD)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds on train+val (default 5)")
    p.add_argument("--image-size", help="HxW or one side (default as for train)")
    p.add_argument("--channels", type=int, choices=[1, 3])
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0, help="the split's seed: the same as a CNN run gives the same split")
    p.add_argument("--skip-bad", action="store_true")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("scan", help="a patch classifier over a whole photograph: heatmaps, detections, counts")
    p.add_argument("run", help="run folder of a patch classifier (patch_cnn is exact)")
    p.add_argument("photo", help="the photograph")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--stride", type=int, help="pixels between windows (a multiple of the network's stride)")
    p.add_argument("--threshold", type=float, default=0.5, help="least probability of a detection (0.5)")
    p.add_argument("--min-distance", type=float, help="least distance between two detections of a class, in "
                                                      "pixels (default half a patch)")
    p.add_argument("--ignore", action="append", metavar="CLASS", help="class not to count (default: background)")
    p.add_argument("--method", default="dense", choices=["dense", "sliding"],
                   help="dense: fully convolutional, in tiles; sliding: every window alone (reference)")
    p.add_argument("--scale", type=float, default=1.0, help="resize the photo first so objects match the patches")
    p.add_argument("--tile", type=int, default=512, help="tile side in pixels (bounds memory; 512 is fastest here)")
    p.add_argument("--dots", help="CSV with class_name,row,col per object: count errors, precision and recall")
    p.add_argument("--radius", type=float, help="match distance for --dots, pixels (default half a patch)")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("compare", help="side-by-side table of runs evaluated on the same test set")
    p.add_argument("runs", nargs="+", help="run folders (or evaluation folders holding metrics.json)")
    p.add_argument("--out", default="compare.html", help="HTML table to write (default compare.html)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("summary", help="layers, output shapes, parameters and receptive fields")
    p.add_argument("model", help="registered model name or run folder")
    p.add_argument("--input", help="CxHxW, e.g. 1x32x32 (default: the model's own, else 3x32x32)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE", help="model option, repeatable")
    p.add_argument("--strategy", default="scratch", choices=["scratch", "transfer", "finetune"],
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.quiet)
    try:
        args.func(args)
    except CnnkitError as e:
        print(f"cnnkit: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("cnnkit: interrupted; a run can be continued with `cnnkit train --resume RUN`.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
