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

from ssnas.config.runtime import Runtime
from ssnas.config.stages import PretrainConfig
from ssnas.config.views import ViewConfig
from ssnas.data.pyramids import FeatureSet
from ssnas.nas.fixed import FixedNet
from ssnas.nas.genotype import Genotype
from ssnas.nas.heads import ProjectionHead
from ssnas.nas.space import SpaceConfig
from ssnas.objectives import SSLLoss, ssl_loss
from ssnas.reporting import Reporter
from ssnas.stages.loop import Batch, Best, DevCheck, Loop
from ssnas.stages.training import (
    NodeData,
    adam,
    batch_indices,
    contrastive_loss,
    cosine_lr,
    descend,
    plan_budget,
    step_seed,
)


@dataclass
class PretrainResult:
    network_state: dict[str, torch.Tensor]  # the FixedNet's weights at the best dev epoch
    best_epoch: int
    dev_loss: float
    seconds: float


@torch.no_grad()
def _dev_loss(network: FixedNet, projector: nn.Module, data: NodeData, rows: torch.Tensor, modality: tuple[int, ...],
              views: ViewConfig, config: PretrainConfig, seed: int, stacked: bool, loss: SSLLoss) -> float:
    network.eval()
    projector.eval()
    generator = torch.Generator().manual_seed(seed)  # the same views every epoch: comparable losses
    losses = [
        float(contrastive_loss(network, projector, data.batch(index), modality, views, config.temperature, generator,
                               stacked, loss))
        for index in batch_indices(rows, config.batch_size, None, drop_last=False)
    ]
    return sum(losses) / len(losses)  # the loop puts both back in training mode


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
    if resume is not None:
        network.load_state_dict(resume["network"])
        projector.load_state_dict(resume["projector"])
        optimizer.load_state_dict(resume["optimizer"])
    train, dev = features.splits["train"], features.splits["dev"]
    budget = plan_budget(train.numel(), config.batch_size, config.epochs, config.min_steps)
    best = Best.start("dev_loss", float("inf"), lambda: {"network": copy.deepcopy(network.state_dict())}, lower=True)
    loop = Loop("pretrain", reporter, budget, (train,), runtime.seed, (network, projector), resume, best=best)
    train_loss = runtime.compiled(contrastive_loss)
    view_loss = ssl_loss(config.ssl_loss)

    def step(batch: Batch) -> torch.Tensor:
        cosine_lr(optimizer, config.lr, config.lr_min, loop.progress)
        views_of_step = torch.Generator().manual_seed(step_seed(runtime.seed, loop.at.step))
        with runtime.autocast(device):
            loss = train_loss(network, projector, data.batch(batch[0]), modality, views, config.temperature,
                              views_of_step, runtime.batch_views, view_loss).float()
        descend(loss, optimizer, params, config.grad_clip)
        return loss

    def end_epoch(epoch: int, step: int) -> DevCheck:
        with runtime.autocast(device):
            dev_loss = _dev_loss(network, projector, data, dev, modality, views, config, runtime.seed,
                                 runtime.batch_views, view_loss)
        reporter.metric("epoch_loss", dev_loss, step=step, epoch=epoch, split="dev")
        return DevCheck(dev_loss)

    def state() -> dict[str, Any]:
        return {"network": network.state_dict(), "projector": projector.state_dict(),
                "optimizer": optimizer.state_dict(), "genotype": genotype.to_dict(), "space": dataclasses.asdict(space),
                "in_channels": data.in_channels}

    if loop.at.step == 0:
        reporter.event(budget.describe("pretrain"))
        reporter.genotype(genotype, step=0, epoch=0)
    loop.run(step, end_epoch, state)
    kept = best.record
    reporter.event(f"pretrain: kept epoch {kept['epoch']} (dev contrastive loss {kept['dev_loss']:.4f})")
    return PretrainResult(network_state=kept["network"], best_epoch=kept["epoch"], dev_loss=kept["dev_loss"],
                          seconds=time.perf_counter() - started)
