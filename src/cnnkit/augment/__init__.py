"""Data augmentation on batches, on the model's device: the spec, the layer, mixing, test-time augmentation."""
