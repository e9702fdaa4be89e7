"""Training on Lightning: the LightningModule, callbacks, optimisers and ``train``/``resume``."""
