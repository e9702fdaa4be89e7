"""Exact duplicates (the same decoded pixels) and near-duplicates (perceptual hashes within a few bits, or latent
vectors with a cosine above a threshold), grouped; each group says whether it crosses splits or classes."""

from __future__ import annotations

import numpy as np

from cnnkit.audit.inventory import Item


class _Groups:
    """Union-find over item indices."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)

    def groups(self) -> list[list[int]]:
        found: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            found.setdefault(self.find(i), []).append(i)
        return [g for g in found.values() if len(g) > 1]


def _describe(items: list[Item], members: list[int], kind: str, evidence: str) -> dict:
    splits = sorted({items[i].split for i in members})
    classes = sorted({items[i].label for i in members})
    return {"kind": kind, "evidence": evidence, "files": [items[i].path for i in members],
            "classes": classes, "splits": splits,
            "crosses_splits": len(splits) > 1 and "all" not in splits, "crosses_classes": len(classes) > 1}


def exact_duplicates(items: list[Item]) -> list[dict]:
    """Groups of images whose decoded pixels are identical (whatever their files' bytes)."""
    by_pixels: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if not item.error:
            by_pixels.setdefault(item.pixels_sha256, []).append(i)
    return [_describe(items, members, "exact", "identical decoded pixels")
            for members in by_pixels.values() if len(members) > 1]


def _hash_pairs(hashes: np.ndarray, bits: int) -> list[tuple[int, int]]:
    """Pairs of 64-bit hashes at most ``bits`` apart (Hamming distance), a block of rows at a time."""
    pairs = []
    as_bytes = hashes.view(np.uint8).reshape(len(hashes), 8)
    for start in range(0, len(hashes), 512):
        block = as_bytes[start:start + 512]
        distance = np.unpackbits(block[:, None, :] ^ as_bytes[None, :, :], axis=2).sum(axis=2)
        for i, j in zip(*np.nonzero(distance <= bits)):
            if start + i < j:
                pairs.append((int(start + i), int(j)))
    return pairs


LOOK_ALIKE = 10  # a group of more near-duplicates than this is a chain of look-alikes, said as such
SAME_PICTURE = 0.98  # correlation of two 16x16 grayscale thumbnails (brightness and contrast removed): one picture


def thumbnail_correlation(a: bytes, b: bytes) -> float:
    """Pearson correlation of two 16x16 grayscale thumbnails: 1 for one picture however bright or contrasted,
    above 0.99 after JPEG re-encoding; distinct photographs of one kind of object stay far below."""
    x, y = (np.frombuffer(t, np.uint8).astype(np.float64) for t in (a, b))
    x, y = x - x.mean(), y - y.mean()
    scale = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / scale) if scale > 0 else float(np.array_equal(x, y))


def _latent_pairs(unit: np.ndarray, cosine: float) -> list[tuple[int, int]]:
    """Pairs of unit vectors at least ``cosine`` alike, among each one's 5 nearest (FAISS, inner product)."""
    import faiss

    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(np.ascontiguousarray(unit, dtype=np.float32))
    similarity, neighbours = index.search(np.ascontiguousarray(unit, dtype=np.float32), min(6, len(unit)))
    return [(a, int(b)) for a, (row, ids) in enumerate(zip(similarity, neighbours))
            for s, b in zip(row, ids) if 0 <= b != a and s >= cosine]


def near_duplicates(items: list[Item], hash_bits: int, vectors: np.ndarray | None = None,
                    cosine: float = 0.95) -> list[dict]:
    """Groups of images that are not pixel-identical but alike: pairs on which two of three signs agree, difference
    hashes at most ``hash_bits`` of 64 apart, latent ``vectors`` (one row per item) at least ``cosine`` alike, and
    16x16 thumbnails that agree pixel for pixel (``SAME_PICTURE``). Two views of one picture pass all three; two
    pictures of one kind of object may pass the cosine, seldom the hash and never the thumbnails; a copy re-encoded
    or brightened until its hash moved still passes the other two. Without vectors, the hash and thumbnails."""
    good = [i for i, item in enumerate(items) if not item.error]
    groups = _Groups(len(items))
    hashes = np.array([items[i].dhash for i in good], dtype=np.uint64)
    unit = None
    candidates = set(_hash_pairs(hashes, hash_bits))
    if vectors is not None and len(good) > 1:
        unit = np.asarray(vectors, dtype=np.float64)[good]
        unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        candidates |= {tuple(sorted(pair)) for pair in _latent_pairs(unit, cosine)}
    for a, b in candidates:
        signs = (bin(int(hashes[a]) ^ int(hashes[b])).count("1") <= hash_bits,
                 unit is not None and float(unit[a] @ unit[b]) >= cosine,
                 thumbnail_correlation(items[good[a]].thumbnail, items[good[b]].thumbnail) >= SAME_PICTURE)
        if sum(signs) >= 2:
            groups.join(good[a], good[b])
    rule = (f"two of: difference hashes within {hash_bits} of 64 bits, " + (
        f"latent cosine >= {cosine}, " if unit is not None else "") +
        f"16x16 grayscale thumbnails correlating at >= {SAME_PICTURE} (brightness and contrast aside)")
    return [_describe(items, members, "near" if len(members) <= LOOK_ALIKE else "look-alike cluster",
                      rule if len(members) <= LOOK_ALIKE else f"{rule}, chained through {len(members)} images: "
                      "images of one kind alike at this resolution rather than copies")
            for members in groups.groups()
            if len({items[i].pixels_sha256 for i in members}) > 1]  # an exact group is reported as exact
