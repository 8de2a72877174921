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
from typing import TYPE_CHECKING

import torch
from torch import nn

from ssnas.nas.primitives import ChannelBatchNorm

if TYPE_CHECKING:
    from ssnas.nas.fixed import FixedNet
    from ssnas.nas.supernet import Supernet

# Elements per node of one batch above which a CPU step stays unstacked. Measured on 2 cores:
# stacking made a small pipeline's SSL step about 20 % faster (64 x 16 x 32 per node), and left
# MM-IMDB's shapes (96 x 16 x 192) between -10 % and +7 %, where the products and memory bound the
# step and the copies that stacking adds cost what the launches it saves gained.
CPU_STACK_LIMIT = 1 << 17


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


def worth_stacking(inputs: Sequence[list[torch.Tensor]]) -> bool:
    """Whether one stacked pass pays: always on an accelerator (launch-bound), on a CPU for small nodes."""
    first = inputs[0][0]
    same_size = len({nodes[0].shape[0] for nodes in inputs}) == 1  # batch norm's groups are equal chunks
    return len(inputs) > 1 and same_size and (first.device.type != "cpu" or first.numel() <= CPU_STACK_LIMIT)


def fuse_batches(
    network: FixedNet | Supernet, inputs: Sequence[list[torch.Tensor]], stacked: bool
) -> list[torch.Tensor]:
    """`network.fuse` of each list of nodes; `stacked` runs them as one pass where that pays (same result)."""
    if not (stacked and worth_stacking(inputs)):
        return [network.fuse(nodes) for nodes in inputs]
    joined = [torch.cat(level) for level in zip(*inputs, strict=True)]
    with normalized_per_group(network, len(inputs)):
        fused = network.fuse(joined)
    return list(fused.chunk(len(inputs)))
