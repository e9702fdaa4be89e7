"""Which unlabelled images to label next: a trained run's uncertainty, diversity in its latent space and class
balance, over a pool of images nobody labelled (``cnnkit suggest``)."""

from cnnkit.suggest.rank import Suggestion, Suggestions, suggest

__all__ = ["Suggestion", "Suggestions", "suggest"]
