"""``cnnkit features``, ``similar`` and ``tsne``: the latent space of a run."""

from __future__ import annotations

import argparse

from cnnkit.cli.options import add_options, settings


def cmd_features(args: argparse.Namespace) -> None:
    from cnnkit.inference import Predictor
    from cnnkit.latent.features import folder_features, save_features

    from cnnkit.config.reading import ReadConfig

    arrays = folder_features(Predictor.load(args.run, backend="torch"), args.data,
                             skip_bad=settings(args, ReadConfig).skip_bad)
    save_features(args.out, arrays)
    print(f"Wrote {args.out}: {arrays['features'].shape[0]} vectors of dimension {arrays['features'].shape[1]} "
          "(arrays: features, paths, labels, classes)")


def cmd_similar(args: argparse.Namespace) -> None:
    from cnnkit._io import write_bytes
    from cnnkit.config import SearchConfig
    from cnnkit.latent.similar import similar

    config = settings(args, SearchConfig)
    found = similar(args.run, args.query, config)
    if found.recall_at_10 is not None:
        print(f"Approximate index ({config.index}): recall@10 against exact search {found.recall_at_10:.3f}")
    for rank, (path, label, distance) in enumerate(zip(found.paths, found.classes, found.distances), 1):
        print(f"{rank:3d}  {distance:10.4f}  {label:<12}  {path}")
    write_bytes(args.out, found.grid_png())
    print(f"Grid written to {args.out}")


def cmd_tsne(args: argparse.Namespace) -> None:
    from cnnkit._io import write_bytes
    from cnnkit.config import TsneConfig
    from cnnkit.latent.tsne import run_tsne

    result = run_tsne(args.run, args.data, settings(args, TsneConfig))
    write_bytes(args.out, result.png)
    print(f"t-SNE of {len(result.coordinates)} images written to {args.out}")


def register(sub) -> None:
    from cnnkit.config import SearchConfig, TsneConfig
    from cnnkit.config.reading import ReadConfig

    p = sub.add_parser("features", help="latent vectors (the layer before the classifier) of a folder's images")
    p.add_argument("run", help="run folder")
    p.add_argument("data", help="class-folder tree (labels from folder names) or a folder of images")
    p.add_argument("--out", default="features.npz", help=".npz with features, paths, labels, classes")
    add_options(p, ReadConfig, grouped=False)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("similar", help="the training images nearest to a query in the latent space")
    p.add_argument("run", help="run folder")
    p.add_argument("query", help="query image")
    add_options(p, SearchConfig, grouped=False)
    p.add_argument("--out", default="similar.png", help="grid PNG, query first (default similar.png)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("tsne", help="2-D t-SNE map of the latent vectors, coloured by class")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="labelled folder (default: the run's train, val and test images)")
    p.add_argument("--out", default="tsne.png")
    add_options(p, TsneConfig, grouped=False)
    p.set_defaults(func=cmd_tsne)
