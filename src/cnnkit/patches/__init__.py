"""Training patches cut from dotted photographs: one folder per class centred on the experts' dots, background
windows away from every dot, and a manifest saying where each patch came from."""

from cnnkit.patches.cut import make_patches

__all__ = ["make_patches"]
