"""Scanning large images: a patch classifier run fully convolutionally, in tiles, with heatmaps and counts."""
