"""The pretrain stage: the fixed network of a genotype trained with the contrastive objective.

Reads no labels (it is handed a label-less view of the data). The epoch kept is the one with the
lowest contrastive loss on the dev split.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ssnas.data.pyramids import FeatureSet
from ssnas.data.views import ViewConfig
from ssnas.nas.fixed import FixedNet
from ssnas.nas.genotype import Genotype
from ssnas.nas.heads import ProjectionHead
from ssnas.nas.space import SpaceConfig
from ssnas.reporting import Reporter
from ssnas.stages.config import PretrainConfig
from ssnas.stages.runtime import Runtime
from ssnas.stages.training import (
    NodeData,
    adam,
    batch_indices,
    contrastive_loss,
    cosine_lr,
    descend,
    record_step,
    steps_per_epoch,
)


@dataclass
class PretrainResult:
    network_state: dict[str, torch.Tensor]  # the FixedNet's weights at the best dev epoch
    best_epoch: int
    dev_loss: float
    seconds: float


@torch.no_grad()
def _dev_loss(network: FixedNet, projector: nn.Module, data: NodeData, rows: torch.Tensor, modality: tuple[int, ...],
              views: ViewConfig, config: PretrainConfig, seed: int) -> float:
    network.eval()
    projector.eval()
    generator = torch.Generator().manual_seed(seed)  # the same views every epoch: comparable losses
    losses = [
        float(contrastive_loss(network, projector, data.batch(index), modality, views, config.temperature, generator))
        for index in batch_indices(rows, config.batch_size, None, drop_last=False)
    ]
    network.train()
    projector.train()
    return sum(losses) / len(losses)


def pretrain(
    features: FeatureSet,
    genotype: Genotype,
    space: SpaceConfig,
    config: PretrainConfig,
    views: ViewConfig,
    runtime: Runtime,
    reporter: Reporter,
) -> PretrainResult:
    started = time.perf_counter()
    features = features.without_labels()
    device = runtime.torch_device()
    generator = runtime.seed_everything(offset=1)
    data = NodeData(features, space.positions, device)
    network = FixedNet(data.in_channels, genotype, space).to(device)
    projector = ProjectionHead(network.out_features, out_features=config.projection_dim).to(device)
    modality = tuple(data.node_modality[i] for i in network.used_nodes)
    if views.policy == "cross_modal" and len(set(modality)) < 2:
        views = replace(views, policy="instance")
        reporter.event("pretrain: the genotype reads one modality only, so views fall back to the instance policy",
                       level="warning")
    params = [*network.parameters(), *projector.parameters()]
    optimizer = adam(params, lr=config.lr, weight_decay=config.weight_decay)
    train, dev = features.splits["train"], features.splits["dev"]
    per_epoch = steps_per_epoch(train.numel(), config.batch_size)
    total = per_epoch * config.epochs
    best = (float("inf"), -1, copy.deepcopy(network.state_dict()))
    reporter.genotype(genotype, step=0, epoch=0)
    step = 0
    for epoch in range(config.epochs):
        losses = []
        for index in batch_indices(train, config.batch_size, generator):
            cosine_lr(optimizer, config.lr, config.lr_min, step / total)
            with runtime.autocast(device):
                loss = contrastive_loss(network, projector, data.batch(index), modality, views, config.temperature,
                                        generator).float()
            descend(loss, optimizer, params, config.grad_clip)
            step += 1
            losses.append(record_step(reporter, "pretrain", loss, step, total, epoch))
        with runtime.autocast(device):
            dev_loss = _dev_loss(network, projector, data, dev, modality, views, config, runtime.seed)
        reporter.metric("epoch_loss", sum(losses) / len(losses), step=step, epoch=epoch, split="train")
        reporter.metric("epoch_loss", dev_loss, step=step, epoch=epoch, split="dev")
        if dev_loss < best[0]:
            best = (dev_loss, epoch, copy.deepcopy(network.state_dict()))
        reporter.checkpoint(_checkpoint(network, projector, optimizer, genotype, space, data, epoch), epoch=epoch)
    reporter.event(f"pretrain: kept epoch {best[1]} (dev contrastive loss {best[0]:.4f})")
    return PretrainResult(network_state=best[2], best_epoch=best[1], dev_loss=best[0],
                          seconds=time.perf_counter() - started)


def _checkpoint(network: FixedNet, projector: nn.Module, optimizer: torch.optim.Optimizer, genotype: Genotype,
                space: SpaceConfig, data: NodeData, epoch: int) -> dict[str, Any]:
    return {
        "stage": "pretrain",
        "epoch": epoch,
        "network": network.state_dict(),
        "projector": projector.state_dict(),
        "optimizer": optimizer.state_dict(),
        "genotype": genotype.to_dict(),
        "space": space,
        "in_channels": data.in_channels,
    }
