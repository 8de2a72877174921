"""The fine-tune stage: a classifier on a (pretrained or fresh) fixed network, on r of the labels.

Only a seeded fraction `label_ratio` of the training split is read with its labels. The epoch
and the decision threshold are chosen on the dev split; the test split is scored once, at the
end, with that choice.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

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
from ssnas.stages.training import NodeData, adam, batch_indices, cosine_lr, descend, record_step, steps_per_epoch


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
) -> FinetuneResult:
    """Train and score a classifier; `network_state` is a pretrained FixedNet (None: from scratch)."""
    started = time.perf_counter()
    device = runtime.torch_device()
    generator = runtime.seed_everything(offset=2)
    data = NodeData(features, space.positions, device)
    network = FixedNet(data.in_channels, genotype, space)
    if network_state is not None:
        network.load_state_dict(network_state)
    model = Model(network, Classifier(network.out_features, features.num_classes)).to(device)
    if config.freeze_encoder:
        network.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adam(params, lr=config.lr, weight_decay=config.weight_decay)
    labels = features.labels.float()
    train = labeled_subset(features.splits["train"], config.label_ratio, runtime.seed)
    dev, test = features.splits["dev"], features.splits["test"]
    targets = labels.to(device)
    per_epoch = steps_per_epoch(train.numel(), config.batch_size)
    total = per_epoch * config.epochs
    best = (-1.0, -1, 0.5, {}, copy.deepcopy(model.state_dict()))
    reporter.genotype(genotype, step=0, epoch=0)
    step = 0
    for epoch in range(config.epochs):
        model.train()
        if config.freeze_encoder:
            network.eval()  # a frozen encoder keeps its batch-norm statistics too
        losses = []
        for index in batch_indices(train, config.batch_size, generator):
            cosine_lr(optimizer, config.lr, config.lr_min, step / total)
            with runtime.autocast(device):
                logits = model(data.batch(index)).float()
            loss = multilabel_bce(logits, targets.index_select(0, index.to(device)))
            descend(loss, optimizer, params, config.grad_clip)
            step += 1
            losses.append(record_step(reporter, "finetune", loss, step, total, epoch))
        with runtime.autocast(device):
            threshold, dev_f1 = best_threshold(predict(model, data, dev, config.batch_size), labels[dev])
        reporter.metric("epoch_loss", sum(losses) / len(losses), step=step, epoch=epoch, split="train")
        for key, value in dev_f1.items():
            reporter.metric(f"f1_{key}", value, step=step, epoch=epoch, split="dev")
        reporter.metric("threshold", threshold, step=step, epoch=epoch, split="dev")
        if dev_f1["weighted"] > best[0]:
            best = (dev_f1["weighted"], epoch, threshold, dev_f1, copy.deepcopy(model.state_dict()))
        reporter.checkpoint(
            {"stage": "finetune", "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "genotype": genotype.to_dict(), "space": space, "in_channels": data.in_channels},
            epoch=epoch,
        )
    _, best_epoch, threshold, dev_f1, state = best
    model.load_state_dict(state)
    with runtime.autocast(device):
        test_f1 = f1_scores(predict(model, data, test, config.batch_size), labels[test], threshold)
    for key, value in test_f1.items():
        reporter.metric(f"f1_{key}", value, step=step, epoch=best_epoch, split="test")
    reporter.event(
        f"finetune: epoch {best_epoch} and threshold {threshold:.2f} chosen on dev; "
        f"test F1 weighted {test_f1['weighted']:.4f}"
    )
    return FinetuneResult(test=test_f1, dev=dev_f1, threshold=threshold, best_epoch=best_epoch,
                          labeled=int(train.numel()), seconds=time.perf_counter() - started)
