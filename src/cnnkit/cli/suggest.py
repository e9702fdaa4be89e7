"""``cnnkit suggest``: which unlabelled images to label next."""

from __future__ import annotations

import argparse

from cnnkit.cli.options import add_options, settings


def cmd_suggest(args: argparse.Namespace) -> None:
    from cnnkit.config import SuggestConfig
    from cnnkit.suggest import suggest

    result = suggest(args.run, args.pool, args.out, settings(args, SuggestConfig))
    for row in result.rows[:10]:
        print(f"{row.rank:4d}  {row.predicted or '(none)':<12} {row.probability:6.3f}  {row.path}")
    if len(result.rows) > 10:
        print(f"  ... {len(result.rows) - 10} more in {result.out / 'to_label.csv'}")
    print(result.summary())


def register(sub) -> None:
    from cnnkit.config import SuggestConfig

    p = sub.add_parser("suggest", help="rank unlabelled images by what a label would teach a run (active learning)",
                       description="Rank the images of POOL (a folder, searched recursively; no labels needed) by "
                                   "what labelling them would teach RUN; write to_label.csv (paths relative to POOL), "
                                   "index.html and thumbs/ into --out. The run's own images are left out.")
    p.add_argument("run", help="a classification run folder")
    p.add_argument("pool", help="folder of unlabelled images")
    p.add_argument("--out", default="suggestions", help="output folder (default: suggestions)")
    add_options(p, SuggestConfig, grouped=False)
    p.set_defaults(func=cmd_suggest)
