"""``cnnkit label``: a page to label a pool's images one at a time, and to learn again from the labels."""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from cnnkit.cli.options import add_options, settings, values
from cnnkit.errors import CnnkitError

log = logging.getLogger("cnnkit")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LABELS = "labels.csv"  # the labels CSV without --labels


def register(sub) -> None:
    from cnnkit.config import LabelConfig

    p = sub.add_parser("label", help="label a pool's images in the browser (keys 1-9, s skip, u undo) into a labels "
                                     "CSV, or dot photos from a point detector's proposals (--dots); learn again",
                       description="Serve a page showing the images of POOL one at a time (the order of --suggestions, "
                                   "else the run's suggest ranking, else file order) with RUN's guess; each label is "
                                   "written at once to --labels (path,label, as cnnkit train reads); images it "
                                   "already labels are not shown again. 'learn again' trains RUN's recipe on its "
                                   "data and the new labels into RUN-learnN. With --dots, serve a page over the "
                                   "PHOTOs instead: the point detector RUN proposes dots, you accept, reject, move or "
                                   "add them, and each photo's dots are written at once to its CSV; 'learn again' "
                                   "trains the detector on every dotted photo.")
    p.add_argument("pool", nargs="+", metavar="POOL|PHOTO", help="folder of unlabelled images (searched "
                                                                  "recursively); with --dots, the photos to dot")
    p.add_argument("--run", required=True, help="the classification run whose classes and guesses the page shows "
                                                "(with --dots: the point detector whose detections it proposes)")
    p.add_argument("--dots", nargs="+", metavar="CSV", help="dot the photos instead: one dots CSV per photo "
                                                            "(class_name,row,col, as scan, patches and points read; "
                                                            "created or continued), the detector's detections "
                                                            "proposed; 'learn again' trains the detector again on "
                                                            "every dotted photo into RUN-learnN")
    p.add_argument("--labels", help=f"the labels CSV, created or continued (default: {LABELS})")
    p.add_argument("--suggestions", metavar="CSV", help="a to_label.csv of cnnkit suggest: show its images, in its "
                                                        "order")
    p.add_argument("--label-studio-tasks", metavar="JSON", help="write the images as Label Studio tasks (the run's "
                                                                "guesses as predictions) and exit")
    p.add_argument("--learn-again", action="store_true", help="train RUN's recipe on its data and --labels (with "
                                                               "--dots: the dots files) into RUN-learnN now, as the "
                                                               "page's button does, and exit")
    p.add_argument("--from-label-studio", metavar="EXPORT", help="read Label Studio's export (JSON, JSON-MIN or CSV) "
                                                                 "of those tasks into --labels and exit")
    add_options(p, LabelConfig, grouped=False)
    p.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> None:
    from cnnkit.config import LabelConfig

    config = settings(args, LabelConfig)
    if args.dots:
        return _dots(args, config)
    from cnnkit.label import open_session

    if len(args.pool) > 1:
        raise CnnkitError(f"cnnkit label takes one POOL folder (got {len(args.pool)} paths); to dot photos give "
                          "--dots, one CSV per photo.")
    args.pool = args.pool[0]
    serving = not (args.from_label_studio or args.label_studio_tasks or args.learn_again)
    order = config.order if serving or args.label_studio_tasks else "file"  # no ranking where no order is shown
    session = open_session(args.run, args.pool, args.labels or LABELS, args.suggestions, order)
    if args.from_label_studio:
        from cnnkit.label.studio import import_export

        count = import_export(session, args.from_label_studio)
        print(f"Labelled {count} images from {args.from_label_studio} into {session.labels.path}.")
    elif args.label_studio_tasks:
        from cnnkit.label.studio import write_tasks

        count = len(write_tasks(session, args.label_studio_tasks))
        print(f"Wrote {count} Label Studio tasks to {args.label_studio_tasks}.")
    elif args.learn_again:
        learner = _learner(args.run, session, None)
        learner.start(foreground=True)
        outcome = learner.wait()
        if outcome["state"] != "done":
            raise CnnkitError(f"Learning again failed (the training's output above); the labels stay in "
                              f"{session.labels.path}.")
        print(f"Learned again into {outcome['run']}.")
    else:
        _serve(args, config, session)


def _learner(run: str, session, rank: bool | None, warm: bool = False):
    """Learning again with the run's recipe; afterwards the session's guesses (and with ``rank`` its order) come
    from the new run (``rank`` None: nothing to refresh). ``warm``: in spare processes started ahead (the server's)."""
    from cnnkit.cli.train import reproduce_command
    from cnnkit.label.learn import Learner
    from cnnkit.label.start import learned

    recipe = shlex.split(reproduce_command("DATA", Path(run)))  # cnnkit train DATA --model ...: its command and flags
    refresh = (lambda new_run: None) if rank is None else (lambda new_run: learned(session, new_run, rank))
    return Learner(Path(run), session.labels, [recipe[1], *recipe[3:]], refresh, warm=warm)


def _dots(args: argparse.Namespace, config) -> None:
    """Dotting photos with a point detector's proposals (or, with --learn-again, learning from their dots)."""
    from cnnkit.config import LabelConfig
    from cnnkit.label.dot_start import dots_learner, open_dot_session

    refused = [(flag, why) for flag, given, why in (
        ("--suggestions", args.suggestions, ""), ("--label-studio-tasks", args.label_studio_tasks, ""),
        ("--from-label-studio", args.from_label_studio, ""),
        ("--labels", args.labels, " (the dots are written to the --dots CSVs)"),
        ("--order", "order" in values(args, LabelConfig), " (the photos are shown in the order given)")) if given]
    if refused:
        flag, why = refused[0]
        raise CnnkitError(f"{flag} is for labelling a pool with a classifier, not for dotting photos{why}; drop it "
                          "or --dots.")
    session = open_dot_session(args.run, args.pool, args.dots, propose=not args.learn_again)
    learner = dots_learner(args.run, session, warm=not args.learn_again)
    if args.learn_again:
        learner.start(foreground=True)
        outcome = learner.wait()
        if outcome["state"] != "done":
            raise CnnkitError(f"Learning again failed (the training's output above); the dots stay in "
                              f"{', '.join(str(f.path) for f in session.files)}.")
        print(f"Learned again into {outcome['run']}.")
        return
    from cnnkit.label.dot_app import create_dot_app

    dotted = sum(len(f.dots) for f in session.files)
    _listen(create_dot_app(session, learner), config, f"Dotting {len(session.photos)} photo(s) ({dotted} dots) with "
            f"{args.run}'s proposals at http://{config.host}:{config.port}/; Ctrl-C stops (every dot is saved).")


def _listen(app, config, line: str) -> None:
    try:
        import uvicorn
    except ImportError:
        raise CnnkitError("cnnkit label needs FastAPI and uvicorn: pip install 'cnnkit[serve]'.") from None
    if config.host not in LOOPBACK:
        log.warning("Listening on %s: anyone who reaches this machine on port %d can see the images and label them.",
                    config.host, config.port)
    print(line, flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def _serve(args: argparse.Namespace, config, session) -> None:
    try:
        from cnnkit.label.app import create_label_app
    except ImportError:
        raise CnnkitError("cnnkit label needs FastAPI and uvicorn: pip install 'cnnkit[serve]'.") from None
    rank = args.suggestions is None and config.order == "suggest"
    state = session.state()
    _listen(create_label_app(session, _learner(args.run, session, rank, warm=True)), config,
            f"Labelling {state['total']} images of {args.pool} ({state['labelled']} labelled) at "
            f"http://{config.host}:{config.port}/ into {session.labels.path}; Ctrl-C stops (every label is saved).")
