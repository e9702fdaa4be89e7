"""How ``cnnkit label`` serves a pool for labelling."""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.options import check_declared, check_range, option

# The order the pool's images are shown in when no suggestion list is given, the default first.
LABEL_ORDERS = ("suggest", "file")


@dataclass(frozen=True)
class LabelConfig:
    """Where the labelling page listens and in which order it shows the pool."""

    host: str = option("127.0.0.1", "address to listen on (another than loopback lets others label, and see, the "
                                    "pool)")
    port: int = option(8001, "port to listen on")
    order: str = option("suggest", "suggest: the images the run would learn most from first (`cnnkit suggest`'s "
                                   "ranking, computed at start); file: the pool's file order (starts at once)",
                        choices=LABEL_ORDERS)

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "port", 0, 65535)
