"""Components of one linear map: the connected components of its bipartite in→out graph.

Nodes are the map's inputs and outputs; an edge joins input ``j`` and output ``i`` when the
weight ``w[i, j]`` is kept. A component is a set of outputs that depend only on a set of inputs
no other component reads, so ``y[outs] = W[outs][:, ins] @ x[ins]`` runs as an independent block.

Why per map and not strongly connected components across layers: the residual stream adds
every hidden unit to itself from one layer to the next and attention mixes positions, so the
cross-layer dependency graph of a transformer is one strongly connected component whatever is
removed inside the maps; the interface-preserving parallelism the paper describes lives inside
each map, and that is what can be executed (:mod:`uisbench.decompose.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class MapComponents:
    """Block label per output and per input (0..n_blocks-1; -1: the node has no kept edge).

    Blocks are numbered by their smallest output index, so two equal partitions have equal
    labels. An output labelled -1 is its bias alone; an input labelled -1 is not read at all.
    """

    out_label: np.ndarray
    in_label: np.ndarray
    n_blocks: int

    def blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(output indices, input indices) of each block, in label order."""
        return [
            (np.flatnonzero(self.out_label == b), np.flatnonzero(self.in_label == b))
            for b in range(self.n_blocks)
        ]

    def sizes(self) -> list[tuple[int, int]]:
        """(outputs, inputs) per block."""
        outs = np.bincount(self.out_label[self.out_label >= 0], minlength=self.n_blocks)
        ins = np.bincount(self.in_label[self.in_label >= 0], minlength=self.n_blocks)
        return list(zip(outs.tolist(), ins.tolist()))

    def block_params(self) -> int:
        """Weights executed by the block form: ``Σ outputs·inputs`` over blocks."""
        return sum(o * i for o, i in self.sizes())

    def same_partition(self, other: MapComponents) -> bool:
        return (
            self.n_blocks == other.n_blocks
            and np.array_equal(self.out_label, other.out_label)
            and np.array_equal(self.in_label, other.in_label)
        )


def components(mask: np.ndarray) -> MapComponents:
    """Components of the kept-weight mask (``out × in`` booleans) of one linear map."""
    n_out, n_in = mask.shape
    rows, cols = np.nonzero(mask)
    graph = coo_matrix(
        (np.ones(len(rows), dtype=np.int8), (rows, n_out + cols)),
        shape=(n_out + n_in, n_out + n_in),
    )
    _, label = connected_components(graph, directed=False)
    degree = np.bincount(rows, minlength=n_out + n_in)
    degree[n_out:] += np.bincount(cols, minlength=n_in)
    label = np.where(degree > 0, label, -1)
    # renumber blocks in order of their smallest node (outputs first): a canonical labelling
    used = label[label >= 0]
    first = np.unique(used, return_index=True)
    order = first[0][np.argsort(first[1])]
    canon = np.full(label.max() + 2 if len(label) else 1, -1, dtype=np.int64)
    canon[order] = np.arange(len(order))
    label = np.where(label >= 0, canon[label], -1)
    return MapComponents(label[:n_out].copy(), label[n_out:].copy(), len(order))
