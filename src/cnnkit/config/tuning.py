"""Settings of the learning-rate finder's sweep; the network and data settings are ``TrainConfig``'s, the same
ones ``train`` takes, so the rate found is the rate of that training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnnkit.errors import ConfigError
from cnnkit.options import check_range, option

SWEEP = "learning-rate sweep"


@dataclass(frozen=True)
class LrFindConfig:
    """The exponential sweep of ``lr-find``: ``batches`` batches, the first at ``start_lr``, each next one at
    ``(end_lr / start_lr) ** (1 / (batches - 1))`` times the rate before, the last at ``end_lr``."""

    start_lr: float = option(1e-7, "first learning rate of the sweep", group=SWEEP, metavar="LR")
    end_lr: float = option(10.0, "last learning rate of the sweep (it stops before, once the smoothed loss passes "
                                 "4 times its minimum)", group=SWEEP, metavar="LR")
    batches: int = option(100, "batches in the sweep, one learning rate each", group=SWEEP, metavar="N",
                          renamed_from=("steps",))

    def __post_init__(self) -> None:
        check_range(self, "start_lr", 0.0, None, strict_low=True)
        check_range(self, "end_lr", 0.0, 100.0, strict_low=True)
        check_range(self, "batches", 10, 100_000)
        if not self.start_lr < self.end_lr:
            raise ConfigError(f"Expected `start_lr` < `end_lr`. Received: start_lr={self.start_lr!r}, "
                              f"end_lr={self.end_lr!r}")

    def to_dict(self) -> dict:
        return asdict(self)
