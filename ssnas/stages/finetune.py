"""The fine-tune stage: a classifier on a (pretrained or fresh) fixed network, on r of the labels.

Only a seeded fraction `label_ratio` of the training split is read with its labels. The epoch
and the decision threshold are chosen on the dev split; the test split is scored once, at the
end, with that choice.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ssnas.data.pyramids import FeatureSet
from ssnas.data.splits import labeled_subset
from ssnas.metrics import best_threshold, f1_scores
from ssnas.nas.fixed import FixedNet
from ssnas.nas.genotype import Genotype
from ssnas.nas.heads import Classifier
from ssnas.nas.space import SpaceConfig
from ssnas.objectives import multilabel_bce
from ssnas.reporting import Reporter
from ssnas.stages.config import FinetuneConfig
from ssnas.stages.runtime import Runtime
from ssnas.stages.training import (
    NodeData,
    Position,
    adam,
    batch_indices,
    cosine_lr,
    descend,
    epoch_generator,
    steps_per_epoch,
    stop_if_asked,
)


@dataclass
class FinetuneResult:
    test: dict[str, float]  # F1 weighted / macro / micro / samples on the test split
    dev: dict[str, float]  # the same on dev, at the chosen epoch and threshold
    threshold: float
    best_epoch: int
    labeled: int  # how many training rows were read with their labels
    seconds: float


class Model(nn.Module):
    def __init__(self, network: FixedNet, classifier: Classifier) -> None:
        super().__init__()
        self.network = network
        self.classifier = classifier

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.network(levels))


@torch.no_grad()
def predict(model: nn.Module, data: NodeData, rows: torch.Tensor, batch_size: int) -> torch.Tensor:
    model.eval()
    probs = [torch.sigmoid(model(data.batch(index)).float()) for index in batch_indices(rows, batch_size, None, False)]
    return torch.cat(probs).cpu()


def finetune(
    features: FeatureSet,
    genotype: Genotype,
    space: SpaceConfig,
    config: FinetuneConfig,
    runtime: Runtime,
    reporter: Reporter,
    network_state: dict[str, torch.Tensor] | None = None,
    resume: dict[str, Any] | None = None,
) -> FinetuneResult:
    """Train and score a classifier; `network_state` is a pretrained FixedNet (None: from scratch)."""
    started = time.perf_counter()
    device = runtime.torch_device()
    runtime.seed_everything(offset=2)
    data = NodeData(features, space.positions, device)
    network = FixedNet(data.in_channels, genotype, space)
    if network_state is not None:
        network.load_state_dict(network_state)
    model = Model(network, Classifier(network.out_features, features.num_classes)).to(device)
    if config.freeze_encoder:
        network.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adam(params, lr=config.lr, weight_decay=config.weight_decay)
    best = {"dev_f1": -1.0, "epoch": -1, "threshold": 0.5, "dev": {}, "model": copy.deepcopy(model.state_dict())}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        best = resume["best"]
    at = Position.resume(resume)
    labels = features.labels.float()
    train = labeled_subset(features.splits["train"], config.label_ratio, runtime.seed)
    dev, test = features.splits["dev"], features.splits["test"]
    targets = labels.to(device)
    per_epoch = steps_per_epoch(train.numel(), config.batch_size)
    total = per_epoch * config.epochs

    def checkpoint() -> dict[str, Any]:
        return {"stage": "finetune", "position": at.to_dict(), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "best": best, "genotype": genotype.to_dict(),
                "space": dataclasses.asdict(space), "in_channels": data.in_channels}

    train_forward = runtime.compiled(model)
    if at.step == 0:
        reporter.genotype(genotype, step=0, epoch=0)
    while at.epoch < config.epochs:
        model.train()
        if config.freeze_encoder:
            network.eval()  # a frozen encoder keeps its batch-norm statistics too
        for index in batch_indices(train, config.batch_size, epoch_generator(runtime.seed, at.epoch))[at.index :]:
            cosine_lr(optimizer, config.lr, config.lr_min, at.step / total)
            with runtime.autocast(device):
                logits = train_forward(data.batch(index)).float()
            loss = multilabel_bce(logits, targets.index_select(0, index.to(device)))
            descend(loss, optimizer, params, config.grad_clip)
            at.finish_step(reporter, "finetune", loss, total, per_epoch, checkpoint)
        with runtime.autocast(device):
            threshold, dev_f1 = best_threshold(predict(model, data, dev, config.batch_size), labels[dev])
        epoch, step = at.epoch, at.step
        reporter.metric("epoch_loss", sum(at.losses) / len(at.losses), step=step, epoch=epoch, split="train")
        for key, value in dev_f1.items():
            reporter.metric(f"f1_{key}", value, step=step, epoch=epoch, split="dev")
        reporter.metric("threshold", threshold, step=step, epoch=epoch, split="dev")
        if dev_f1["weighted"] > best["dev_f1"]:
            best = {"dev_f1": dev_f1["weighted"], "epoch": epoch, "threshold": threshold, "dev": dev_f1,
                    "model": copy.deepcopy(model.state_dict())}
        at.next_epoch()
        reporter.checkpoint(checkpoint(), epoch=epoch)
        if at.epoch < config.epochs:
            stop_if_asked(reporter, "finetune", at, checkpoint)
    model.load_state_dict(best["model"])
    threshold = best["threshold"]
    with runtime.autocast(device):
        test_f1 = f1_scores(predict(model, data, test, config.batch_size), labels[test], threshold)
    for key, value in test_f1.items():
        reporter.metric(f"f1_{key}", value, step=at.step, epoch=best["epoch"], split="test")
    reporter.event(
        f"finetune: epoch {best['epoch']} and threshold {threshold:.2f} chosen on dev; "
        f"test F1 weighted {test_f1['weighted']:.4f}"
    )
    return FinetuneResult(test=test_f1, dev=best["dev"], threshold=threshold, best_epoch=best["epoch"],
                          labeled=int(train.numel()), seconds=time.perf_counter() - started)
