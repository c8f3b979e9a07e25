"""Post-training structural decomposition (family 5, arXiv 2601.15871).

Test every weight of every linear map against its initialisation (:mod:`.criterion`), anneal the
significance level while watching the components of each map (:mod:`.graph`,
:mod:`.annealing`), and run the surviving blocks as independent matmuls (:mod:`.blocks`).
"""

from uisbench.decompose.annealing import DEFAULT_LEVELS, Annealing, Tolerance, anneal, linear_maps
from uisbench.decompose.blocks import BlockLinear, to_blocks
from uisbench.decompose.criterion import Null, bh_reject, bh_thresholds
from uisbench.decompose.graph import MapComponents, components
from uisbench.decompose.pipeline import Decomposition, decompose, load_blocks, save

__all__ = [
    "DEFAULT_LEVELS",
    "Annealing",
    "BlockLinear",
    "Decomposition",
    "MapComponents",
    "Null",
    "Tolerance",
    "anneal",
    "bh_reject",
    "bh_thresholds",
    "components",
    "decompose",
    "linear_maps",
    "load_blocks",
    "save",
    "to_blocks",
]
