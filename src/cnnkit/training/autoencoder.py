"""Training an autoencoder: the LightningModule that teaches it to give its input back (labels ignored), and the
record written after training, with the anomaly thresholds chosen on the validation split only."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from cnnkit.data.prepare import ImageArrays
from cnnkit.data.preprocess import normalize
from cnnkit.inference.network import NetworkPredictor
from cnnkit.inference.reconstruction import QUANTILE, SMOOTHING, anomaly_thresholds, reconstruction_errors
from cnnkit.run import RunFolder, RunRecord
from cnnkit.run.record import ReconstructionRecord
from cnnkit.training.module import ClassifierModule

log = logging.getLogger("cnnkit")


class ReconstructionModule(ClassifierModule):
    """Batches arrive as uint8 (N, C, H, W) with labels, which are ignored. The target is the image in [0, 1],
    after the run's training augmentation when it has one (a transformed image is one more image to reconstruct);
    the input is that target, corrupted in training when the network asks for it (a denoising autoencoder's
    ``input_noise``: Gaussian noise of that std; ``input_mask``: that share of pixels set to 0), then standardised.
    The loss is the mean squared error; optimiser, schedule and resume are the classifier's."""

    def _targets(self, batch: torch.Tensor) -> torch.Tensor:
        return self.augment(batch.float() / 255.0)

    def _corrupted(self, x: torch.Tensor) -> torch.Tensor:
        noise, mask = getattr(self.model, "input_noise", 0.0), getattr(self.model, "input_mask", 0.0)
        if noise:
            x = (x + noise * torch.randn_like(x)).clamp(0.0, 1.0)
        if mask:
            x = x * (torch.rand_like(x[:, :1]) >= mask)
        return x

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(normalize(batch.float() / 255.0, self.preprocessing))

    def _log_loss(self, stage: str, loss: torch.Tensor, n: int) -> None:
        several = self._trainer is not None and self.trainer.world_size > 1
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=several)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        targets = self._targets(batch[0])
        loss = F.mse_loss(self.model(normalize(self._corrupted(targets), self.preprocessing)), targets)
        self._log_loss("train", loss, len(targets))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        images = batch[0]
        self._log_loss("val", F.mse_loss(self(images), images.float() / 255.0), len(images))


def reconstruction_record(run: RunFolder, record: RunRecord, val: ImageArrays) -> ReconstructionRecord:
    """The kept weights' reconstruction error on the validation split, and the anomaly thresholds chosen on it
    (``inference.reconstruction.anomaly_thresholds``): no test image takes part."""
    import numpy as np

    predictor = NetworkPredictor.from_record(run, record)
    scores, peaks = [], []
    for start in range(0, len(val), 256):  # a chunk at a time: validation images may live in the disk cache
        images = val.images[start:start + 256]
        chunk_scores, maps = reconstruction_errors(images, predictor.reconstruct_arrays(images), SMOOTHING)
        scores.append(chunk_scores)
        peaks.append(maps.reshape(len(maps), -1).max(axis=1))
    scores = np.concatenate(scores)
    image_threshold, pixel_threshold = anomaly_thresholds(scores, np.concatenate(peaks), QUANTILE)
    if len(record.classes) > 1:
        log.warning("The anomaly thresholds treat every class as normal (%s): to detect anomalies, train on the "
                    "normal class folder alone.", ", ".join(record.classes))
    if len(scores) < 100:
        log.warning("Only %d validation images: the %g quantile of their errors is about their largest, so expect "
                    "more false alarms than %g%% on normal images.", len(scores), QUANTILE, 100 * (1 - QUANTILE))
    h, w = record.preprocessing.image_size
    chosen = ReconstructionRecord(
        code_size=int(predictor.model.code_size), pixels=h * w * record.preprocessing.channels,
        val_error=round(float(scores.mean()), 8), image_threshold=round(image_threshold, 8),
        pixel_threshold=round(pixel_threshold, 8), quantile=QUANTILE, smoothing=SMOOTHING, val_images=len(scores))
    log.info("Reconstruction error on validation %.5f (code of %d numbers for %d pixels: %.1fx smaller); anomaly "
             "threshold %.5f, pixel threshold %.5f (the %g quantile of %d validation images).", chosen.val_error,
             chosen.code_size, chosen.pixels, chosen.compression, chosen.image_threshold, chosen.pixel_threshold,
             QUANTILE, len(scores))
    return chosen
