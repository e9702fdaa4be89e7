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
                  "as covered (diverse, blind to uncertainty); hybrid: under 10 labels per class a typical image of "
                  "each of the pool's largest groups (k-means), then margin's order, passing over an image that lies "
                  "nearer a labelled or already chosen one than half the pool's median distance to the labelled "
                  "images, in the latent space (near-copies)", choices=QUERY_STRATEGIES, flag="--strategy")
    class_balance: bool = option(True, "let one predicted class take any number of picks (default: at most an even "
                                       "share each, unless the others run out)", flag="--no-class-balance",
                                 negate=True)

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "n", 1)
