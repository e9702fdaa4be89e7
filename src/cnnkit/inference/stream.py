"""Images decoded in batches by worker threads (Pillow releases the GIL while it decodes and resizes), the next batch
decoding while the current one is used: at most three batches (the one in use, two decoding) are in memory,
however many images there are."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data.prepare import decode_or_error
from cnnkit.data.preprocess import Preprocessing


@dataclass
class DecodedBatch:
    paths: list[Path]  # every image of the batch, in order
    images: np.ndarray  # (readable, H, W, C) uint8
    readable: np.ndarray  # bool per path
    errors: list[str | None]  # why each unreadable path could not be read; None for the readable ones

    @property
    def readable_paths(self) -> list[Path]:
        return [p for p, ok in zip(self.paths, self.readable) if ok]


def decode_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _decode(path: Path, preprocessing: Preprocessing) -> tuple[np.ndarray | None, str | None]:
    return decode_or_error(path, preprocessing.image_size, preprocessing.channels, preprocessing.interpolation,
                           preprocessing.crop_pct)


def decoded_batches(paths: Sequence[Path], preprocessing: Preprocessing, batch_size: int = 32,
                    workers: int | None = None) -> Iterator[DecodedBatch]:
    """``paths`` decoded ``batch_size`` at a time, in order; unreadable images are flagged, never raised."""
    paths = [Path(p) for p in paths]
    height, width = preprocessing.image_size
    starts = iter(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(workers or decode_workers(), thread_name_prefix="cnnkit-decode") as pool:
        pending: deque = deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                chunk = paths[start:start + batch_size]
                pending.append((chunk, [pool.submit(_decode, p, preprocessing) for p in chunk]))

        submit()
        submit()
        while pending:
            chunk, futures = pending.popleft()
            results = [f.result() for f in futures]
            submit()
            images = [a for a, _ in results if a is not None]
            stacked = np.stack(images) if images else np.zeros((0, height, width, preprocessing.channels), np.uint8)
            yield DecodedBatch(chunk, stacked, np.array([a is not None for a, _ in results], dtype=bool),
                               [e for _, e in results])
