"""Anomalies found by an autoencoder run: images it reconstructs badly, and where (``cnnkit anomaly``)."""

from cnnkit.anomaly.score import AnomalyResult, AnomalyScore, score_images

__all__ = ["AnomalyResult", "AnomalyScore", "score_images"]
