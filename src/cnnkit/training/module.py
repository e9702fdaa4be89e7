"""The LightningModule: loss, metrics and optimiser around any cnnkit network."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.config import TrainConfig
from cnnkit.data.preprocess import Preprocessing, standardize
from cnnkit.training.optim import create_optimizer, create_scheduler


class ClassifierModule(L.LightningModule):
    """Batches arrive as uint8 (N, C, H, W); standardisation happens here, on the model's device."""

    def __init__(self, model: nn.Module, config: TrainConfig, preprocessing: Preprocessing):
        super().__init__()
        self.model = model
        self.config = config
        self.preprocessing = preprocessing

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(standardize(images, self.preprocessing))

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        for name, value in (("loss", loss), ("acc", accuracy)):
            self.log(f"{stage}_{name}", value, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(labels))
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        optimizer = create_optimizer(self.model.parameters(), self.config)
        scheduler = create_scheduler(optimizer, self.config)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}
