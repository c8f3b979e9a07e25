"""Executing a decomposed linear map as independent blocks (permuted block-diagonal matmuls).

A map whose kept weights split into blocks computes ``y[outs_b] = W_b @ x[ins_b] + bias[outs_b]``
per block ``b`` and ``y[i] = bias[i]`` for an output with no kept weight. Blocks of one shape
are stacked and run as one batched matmul (``torch.bmm``): on CPU that is one call whatever the
number of blocks, and on a GPU one kernel instead of one launch per block. The block form reads
the kept weights only through its blocks, so it must agree with the masked dense map to float
tolerance (tested); its cost is ``Σ_b outs_b·ins_b`` multiply-adds, not the dense ``out·in``.
A map that stays one block spanning every node is left as a plain (masked) ``nn.Linear``:
gathering and scattering would only add work.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from uisbench.decompose.graph import MapComponents


class BlockLinear(nn.Module):
    """``nn.Linear`` replaced by the blocks of its components, grouped by shape for ``bmm``."""

    def __init__(self, linear: nn.Linear, comps: MapComponents) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        by_shape: dict[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
        for outs, ins in comps.blocks():
            o, i = torch.as_tensor(outs), torch.as_tensor(ins)
            by_shape[(len(outs), len(ins))].append((o, i))
        self.n_groups = len(by_shape)
        for g, blocks in enumerate(by_shape.values()):
            outs = torch.stack([o for o, _ in blocks])  # (G, o)
            ins = torch.stack([i for _, i in blocks])  # (G, i)
            w = torch.stack([weight[o][:, i] for o, i in blocks])  # (G, o, i)
            self.register_buffer(f"outs{g}", outs)
            self.register_buffer(f"ins{g}", ins)
            self.register_parameter(f"w{g}", nn.Parameter(w.transpose(1, 2).contiguous(), False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        y = flat.new_zeros(flat.shape[0], self.out_features)
        for g in range(self.n_groups):
            ins, outs = getattr(self, f"ins{g}"), getattr(self, f"outs{g}")
            w = getattr(self, f"w{g}")
            xs = flat[:, ins.flatten()].view(flat.shape[0], *ins.shape).transpose(0, 1)  # (G,T,i)
            ys = torch.bmm(xs, w)  # (G, T, o)
            y[:, outs.flatten()] = ys.transpose(0, 1).reshape(flat.shape[0], -1)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)

    def executed_params(self) -> int:
        return sum(getattr(self, f"w{g}").numel() for g in range(self.n_groups))


def is_trivial(comps: MapComponents) -> bool:
    """One block reading every input and writing every output: nothing to split."""
    full = (comps.out_label == 0).all() and (comps.in_label == 0).all()
    return comps.n_blocks == 1 and bool(full)


def to_blocks(model: nn.Module, maps: dict[str, MapComponents]) -> nn.Module:
    """Replace each listed ``nn.Linear`` (weights already masked) by its :class:`BlockLinear`."""
    for name, comps in maps.items():
        if is_trivial(comps):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        block = BlockLinear(linear, comps).to(device=linear.weight.device)
        setattr(parent, child, block)
    return model
