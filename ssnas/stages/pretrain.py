"""The pretrain stage: the fixed network of a genotype trained with the contrastive objective.

Reads no labels (it is handed a label-less view of the data). The epoch kept is the one with the
lowest contrastive loss on the dev split.
"""

from __future__ import annotations

import copy
import dataclasses
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
    Position,
    adam,
    batch_indices,
    contrastive_loss,
    cosine_lr,
    descend,
    epoch_batches,
    plan_budget,
    step_seed,
    stop_if_asked,
)


@dataclass
class PretrainResult:
    network_state: dict[str, torch.Tensor]  # the FixedNet's weights at the best dev epoch
    best_epoch: int
    dev_loss: float
    seconds: float


@torch.no_grad()
def _dev_loss(network: FixedNet, projector: nn.Module, data: NodeData, rows: torch.Tensor, modality: tuple[int, ...],
              views: ViewConfig, config: PretrainConfig, seed: int, stacked: bool) -> float:
    network.eval()
    projector.eval()
    generator = torch.Generator().manual_seed(seed)  # the same views every epoch: comparable losses
    losses = [
        float(contrastive_loss(network, projector, data.batch(index), modality, views, config.temperature, generator,
                               stacked))
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
    resume: dict[str, Any] | None = None,
) -> PretrainResult:
    """Pretrain (or resume pretraining) the genotype's network; keeps the best dev epoch."""
    started = time.perf_counter()
    features = features.without_labels()
    device = runtime.torch_device()
    runtime.seed_everything(offset=1)
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
    best = {"dev_loss": float("inf"), "epoch": -1, "network": copy.deepcopy(network.state_dict())}
    if resume is not None:
        network.load_state_dict(resume["network"])
        projector.load_state_dict(resume["projector"])
        optimizer.load_state_dict(resume["optimizer"])
        best = resume["best"]
    at = Position.resume(resume)
    train, dev = features.splits["train"], features.splits["dev"]
    budget = plan_budget(train.numel(), config.batch_size, config.epochs, config.min_steps)
    per_epoch, total = budget.per_epoch, budget.total

    def checkpoint() -> dict[str, Any]:
        return {"stage": "pretrain", "position": at.to_dict(), "network": network.state_dict(),
                "projector": projector.state_dict(), "optimizer": optimizer.state_dict(), "best": best,
                "genotype": genotype.to_dict(), "space": dataclasses.asdict(space), "in_channels": data.in_channels}

    train_loss = runtime.compiled(contrastive_loss)
    if at.step == 0:
        reporter.event(budget.describe("pretrain"))
        reporter.genotype(genotype, step=0, epoch=0)
    while at.epoch < config.epochs:
        for (index,) in epoch_batches((train,), budget, runtime.seed, at.epoch)[at.index :]:
            cosine_lr(optimizer, config.lr, config.lr_min, at.step / total)
            views_of_step = torch.Generator().manual_seed(step_seed(runtime.seed, at.step))
            with runtime.autocast(device):
                loss = train_loss(network, projector, data.batch(index), modality, views, config.temperature,
                                  views_of_step, runtime.batch_views).float()
            descend(loss, optimizer, params, config.grad_clip)
            at.finish_step(reporter, "pretrain", loss, total, per_epoch, checkpoint)
        with runtime.autocast(device):
            dev_loss = _dev_loss(network, projector, data, dev, modality, views, config, runtime.seed,
                                 runtime.batch_views)
        epoch, step = at.epoch, at.step
        reporter.metric("epoch_loss", sum(at.losses) / len(at.losses), step=step, epoch=epoch, split="train")
        reporter.metric("epoch_loss", dev_loss, step=step, epoch=epoch, split="dev")
        if dev_loss < best["dev_loss"]:
            best = {"dev_loss": dev_loss, "epoch": epoch, "network": copy.deepcopy(network.state_dict())}
        at.next_epoch()
        reporter.checkpoint(checkpoint(), epoch=epoch)
        if at.epoch < config.epochs:
            stop_if_asked(reporter, "pretrain", at, checkpoint)
    reporter.event(f"pretrain: kept epoch {best['epoch']} (dev contrastive loss {best['dev_loss']:.4f})")
    return PretrainResult(network_state=best["network"], best_epoch=best["epoch"], dev_loss=best["dev_loss"],
                          seconds=time.perf_counter() - started)
