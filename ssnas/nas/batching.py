"""Several batches through one network pass: how the optimized path fuses the views of a step.

A contrastive step fuses two views of the same samples (three inputs with a supervised term).
Stacked along the batch, they run every layer once: half the kernel launches and Python work,
and matrix products twice as tall. The result is the same function as separate passes, because
every layer but batch norm treats samples independently, and batch norm is told the groups
(`ChannelBatchNorm.groups`). Only the order in which dropout draws its masks differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ssnas.nas.primitives import ChannelBatchNorm


@contextmanager
def normalized_per_group(module: nn.Module, groups: int) -> Iterator[None]:
    """Within the block, the batch norms of `module` normalize `groups` stacked batches apart."""
    norms = [m for m in module.modules() if isinstance(m, ChannelBatchNorm)]
    for norm in norms:
        norm.groups = groups
    try:
        yield
    finally:
        for norm in norms:
            norm.groups = 1


def fuse_batches(network: nn.Module, inputs: Sequence[list[torch.Tensor]], stacked: bool) -> list[torch.Tensor]:
    """`network.fuse` of each list of nodes; `stacked` runs them as one pass (same result)."""
    if not stacked or len(inputs) == 1:
        return [network.fuse(nodes) for nodes in inputs]
    sizes = [nodes[0].shape[0] for nodes in inputs]
    if len(set(sizes)) != 1:  # batch norm's groups are equal chunks
        return [network.fuse(nodes) for nodes in inputs]
    joined = [torch.cat(level) for level in zip(*inputs)]
    with normalized_per_group(network, len(inputs)):
        fused = network.fuse(joined)
    return list(fused.chunk(len(inputs)))
