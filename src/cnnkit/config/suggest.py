"""How ``cnnkit suggest`` chooses which unlabelled images to label next."""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.config.reading import ReadConfig
from cnnkit.options import check_declared, check_range, option

# How a label's worth is judged (active learning's query strategies), the default first.
QUERY_STRATEGIES = ("hybrid", "margin", "entropy", "kcenter")


@dataclass(frozen=True)
class SuggestConfig(ReadConfig):
    """Which images of a pool a label would teach the run most about."""

    n: int = option(50, "how many images to suggest")
    query_strategy: str = option(
        "hybrid", "margin: the smallest gap between the two most probable classes first; entropy: the most spread "
                  "probabilities first; kcenter: k-centre greedy in the latent space, the training images counting "
                  "as covered (diverse, blind to uncertainty); hybrid: k-centre greedy among the K x N smallest "
                  "margins (K: candidates; at most half the pool), each distance weighted by 2 - margin (twice for "
                  "an image on the edge of the decision)",
        choices=QUERY_STRATEGIES, flag="--strategy")
    candidates: int = option(10, "hybrid: how many times N of the least certain images k-centre chooses among",
                             metavar="K")
    class_balance: bool = option(True, "let one predicted class take any number of picks (default: at most an even "
                                       "share each, unless the others run out)", flag="--no-class-balance",
                                 negate=True)

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "n", 1)
        check_range(self, "candidates", 1)
