"""The LightningModule: augmentation, mixing, loss, metrics and optimiser around any cnnkit network."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.augment.layer import Augmentation
from cnnkit.augment.mixing import mix_batch
from cnnkit.config import TrainConfig
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.training.optim import create_optimizer, create_scheduler, param_groups


class ClassifierModule(L.LightningModule):
    """Batches arrive as uint8 (N, C, H, W). On the model's device they are scaled to [0, 1], augmented (training
    only: ``Augmentation`` is the identity in eval mode), mixed (mixup/CutMix, training only), then standardised.

    ``class_weights`` (``--balance weights``) weight the cross-entropy of training and validation alike.
    With ``features=True`` batches are cached pooled backbone features (N, views, F): one view per sample is drawn
    at random in training, view 0 (the image itself) in validation, and only the head runs.
    ``backbone_lr`` is the learning rate of a trainable backbone's last stage (fine-tuning; earlier stages get less);
    ``epochs`` sets the schedule's length, ``warmup`` a linear warm-up of the rates over its first steps;
    ``augment`` replaces the run's own augmentation; ``channels_last`` feeds images in that memory format.
    ``multi_label``: labels are 0/1 rows (N, classes), the loss is binary cross-entropy on one sigmoid per class and
    the accuracy that of every (image, class) decision at 0.5.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, preprocessing: Preprocessing,
                 class_weights: list[float] | None = None, features: bool = False, backbone_lr: float | None = None,
                 epochs: int | None = None, augment: str | None = None, channels_last: bool = False,
                 warmup: bool = False, multi_label: bool = False):
        super().__init__()
        self.multi_label = multi_label
        self.model = model
        self.augment = Augmentation(None if features else augment or config.augment, preprocessing.image_size)
        self.channels_last, self.warmup = channels_last, warmup
        self.config = config
        self.preprocessing = preprocessing
        self.features = features
        self.backbone_lr = backbone_lr
        self.epochs = epochs or config.epochs
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)

    def _inputs(self, batch: torch.Tensor) -> torch.Tensor:
        """What the network's trainable part takes: augmented, standardised images, or one view of features."""
        if self.features:
            pick = torch.randint(batch.shape[1], (len(batch),), device=batch.device) if self.training else 0
            return batch[torch.arange(len(batch), device=batch.device), pick]
        return self.augment(batch.float() / 255.0)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.features:
            return self.model.head(x)
        x = normalize(x, self.preprocessing)
        return self.model(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self._logits(self._inputs(batch))

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits, targets.float())
        return F.cross_entropy(logits, targets, weight=self.class_weights)

    def _accuracy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return ((logits > 0) == (labels > 0.5)).float().mean()
        return (logits.argmax(1) == labels).float().mean()

    def _log(self, stage: str, loss: torch.Tensor, accuracy: torch.Tensor, n: int) -> None:
        several = self._trainer is not None and self.trainer.world_size > 1  # DDP: every process logs the mean
        for name, value in (("loss", loss), ("acc", accuracy)):
            self.log(f"{stage}_{name}", value, on_step=False, on_epoch=True, prog_bar=True, batch_size=n,
                     sync_dist=several)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        inputs, labels = batch
        x = self._inputs(inputs)
        targets = labels
        if self.config.mixup or self.config.cutmix:
            x, targets, _ = mix_batch(x, labels, self.model.num_classes, self.config.mixup, self.config.cutmix)
        logits = self._logits(x)
        loss = self._loss(logits, targets)
        self._log("train", loss, self._accuracy(logits, labels), len(labels))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self._log("val", self._loss(logits, labels), self._accuracy(logits, labels), len(labels))

    def on_train_start(self) -> None:
        """A run resumed with more epochs: its schedule stretches to the new total (the restored state has the old)."""
        for config in self.trainer.lr_scheduler_configs:
            scheduler, changed = config.scheduler, False
            if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max != self.epochs:
                scheduler.T_max, changed = self.epochs, True
            elif isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.step_size != max(
                    1, self.epochs // 3):
                scheduler.step_size, changed = max(1, self.epochs // 3), True
            if changed:  # the rate where the new schedule is at this epoch
                for group, lr in zip(scheduler.optimizer.param_groups, scheduler._get_closed_form_lr()):
                    group["lr"] = lr

    def configure_optimizers(self):
        optimizer = create_optimizer(param_groups(self.model, self.config, self.backbone_lr), self.config)
        steps = self.trainer.estimated_stepping_batches if self.warmup else None
        scheduler = create_scheduler(optimizer, self.config, self.epochs, steps)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}
