"""A run's network written for deployment: ONNX with its preprocessing inside, checked against torch, optionally
quantized to int8 (``cnnkit export``). What runs the export is ``inference.onnx``."""
