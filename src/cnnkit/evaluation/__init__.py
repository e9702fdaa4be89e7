"""Measuring a classifier: metrics from one confusion matrix, and evaluation of a run on held-out data."""
