"""Data augmentation on batches, on the model's device: the layer (its spec is ``config.augment``'s), mixing,
test-time augmentation."""
