"""The model a run gets when nobody names one: chosen from the data, as fastai, Keras and Ultralytics start from a
pretrained network for photographs.

Photographs (colour pixels, or images larger than 64 px) get EfficientNet-Lite0's ImageNet weights with a frozen
backbone and a solved head (seconds once the features are cached); small grayscale images (digits, wafer maps) a CNN
from scratch. ``model`` always wins.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cnnkit.config import TrainConfig
from cnnkit.data.files import scan_folder
from cnnkit.data.look import look_at
from cnnkit.run.tasks import KINDS, require_of_data

log = logging.getLogger("cnnkit")

PHOTO_MODEL = "efficientnet_lite0"  # its weights are a base dependency: works offline
SMALL_GRAY_MODEL = "simple_cnn"


def choose_model(data_dir: str | Path, config: TrainConfig) -> TrainConfig:
    """``config`` with its model chosen from the data when it has none, said in one line; unchanged otherwise.

    Settings that only a backbone has (``pretrained``, a fine-tuning strategy, a pool of ``unlabelled`` images for
    its solved head) choose the backbone whatever the data; an autoencoder is always named. Settings the data refuses
    come first (``refuse_for_multi_label_data``): nothing is said or decoded before them.
    """
    refuse_for_multi_label_data(data_dir, config)
    if config.model is not None:
        return config
    if config.pretrained or config.strategy in ("transfer", "finetune") or config.unlabelled:
        log.info("Model: %s (pretrained settings or a pool were given; `model` chooses another)", PHOTO_MODEL)
        return config.replace(model=PHOTO_MODEL, pretrained=True)
    look = look_at(scan_folder(data_dir))
    if look.photos:
        log.info("Model: %s, pretrained on ImageNet, frozen, with a solved head (%s: photographs); `model` chooses "
                 "another, `auto` compares several within a time budget", PHOTO_MODEL, look.describe())
        return config.replace(model=PHOTO_MODEL, pretrained=True)
    log.info("Model: %s from scratch (%s: small grayscale images); `model` chooses another", SMALL_GRAY_MODEL,
             look.describe())
    return config.replace(model=SMALL_GRAY_MODEL)


def refuse_for_multi_label_data(data_dir: str | Path, config: TrainConfig) -> None:
    """Settings that assume one class per image (``balance``, ``unlabelled``) refused on a multi-label set, in the
    words of the table of run kinds, before any image is decoded. An autoencoder named in ``model`` refuses them in
    its own words (``training.fit.probe_model``)."""
    from cnnkit.models import is_autoencoder

    if config.balance == "none" and not config.unlabelled:
        return
    if (config.model is None or not is_autoencoder(config.model)) and scan_folder(data_dir).multi_label:
        refuse_one_class_settings(config)


def refuse_one_class_settings(config: TrainConfig) -> None:
    """ConfigError for ``config``'s settings that assume one class per image, on a multi-label set."""
    if config.balance != "none":
        require_of_data(KINDS["multi-label"], "balance", f"`balance`={config.balance!r}: this set")
    if config.unlabelled:
        require_of_data(KINDS["multi-label"], "unlabelled", f"`unlabelled`={config.unlabelled!r}: this set")
