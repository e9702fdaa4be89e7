"""The near-duplicate rule: two of three signs, the difference hash, the latent cosine and the thumbnails' pixel
agreement."""

from __future__ import annotations

import numpy as np
from cnnkit.audit.duplicates import near_duplicates, thumbnail_correlation
from cnnkit.audit.inventory import Item


def item(name: str, dhash: int, thumbnail: np.ndarray) -> Item:
    pixels = str(hash(thumbnail.tobytes()))  # distinct pixels, as three distinct files have
    return Item(name, "a", "train", pixels_sha256=pixels, dhash=dhash, thumbnail=thumbnail.tobytes())


def test_a_copy_whose_hash_moved_is_found_by_its_pixels_and_a_look_alike_is_not():
    rng = np.random.default_rng(0)
    picture = rng.integers(60, 200, 256).astype(np.uint8)
    copy = np.clip(picture * 1.2 - 15 + rng.normal(0, 2, 256), 0, 255).astype(np.uint8)  # brighter, re-encoded
    other = rng.integers(60, 200, 256).astype(np.uint8)
    items = [item("picture.png", 0, picture), item("copy.jpg", (1 << 9) - 1, copy),  # hashes 9 bits apart
             item("other.png", 1, other)]  # a hash 1 bit from the picture's: the hash alone would join them
    alike = np.ones((3, 4))  # latent vectors that cannot tell the three apart
    groups = near_duplicates(items, hash_bits=6, vectors=alike, cosine=0.95)
    assert [set(g["files"]) for g in groups] == [{"picture.png", "copy.jpg", "other.png"}]  # other: by its hash
    items[2].dhash = (1 << 40) - 1  # far from both
    groups = near_duplicates(items, hash_bits=6, vectors=alike, cosine=0.95)
    assert [set(g["files"]) for g in groups] == [{"picture.png", "copy.jpg"}]  # the copy: by its pixels
    assert near_duplicates(items, hash_bits=6, vectors=np.eye(3, 4), cosine=0.95) == []  # one sign of three
    items[1].dhash = 1  # the copy's hash back within the bits: hash and pixels agree, the latent vectors need not
    groups = near_duplicates(items, hash_bits=6, vectors=np.eye(3, 4), cosine=0.95)
    assert [set(g["files"]) for g in groups] == [{"picture.png", "copy.jpg"}]


def test_thumbnail_correlation_ignores_brightness_and_contrast():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 200, 256).astype(np.uint8)
    assert thumbnail_correlation(a.tobytes(), (a // 2 + 40).astype(np.uint8).tobytes()) > 0.99
    flat = np.full(256, 7, np.uint8).tobytes()
    assert thumbnail_correlation(flat, flat) == 1.0 and thumbnail_correlation(flat, a.tobytes()) == 0.0
