"""The fine-tune stage: a classifier on a (pretrained or fresh) fixed network, on r of the labels.

Only a seeded fraction `label_ratio` of the training split is read with its labels. The mode
(a linear probe on the frozen network, or the whole network trained), the epoch and the decision
threshold are chosen on the dev split; the test split is scored once, at the end, with that
choice. The same stage trains the no-search baselines (`finetune.model`), so that they see the
same labeled rows, budget, dev selection and metrics as the searched networks.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig
from ssnas.data.pyramids import FeatureSet
from ssnas.data.splits import labeled_subset
from ssnas.metrics import best_threshold, f1_scores
from ssnas.nas.fixed import FixedNet
from ssnas.nas.genotype import Genotype
from ssnas.nas.heads import Classifier
from ssnas.nas.no_search import EarlyFusion, build_no_search, flat_nodes
from ssnas.nas.space import SpaceConfig
from ssnas.objectives import multilabel_bce
from ssnas.reporting import Reporter
from ssnas.stages.linear_fit import fit_linear
from ssnas.stages.loop import Batch, Best, DevCheck, Loop, Position
from ssnas.stages.training import Budget, NodeData, adam, batch_indices, cosine_lr, descend, plan_budget


@dataclass
class FinetuneResult:
    test: dict[str, float]  # F1 weighted / macro / micro / samples on the test split
    dev: dict[str, float]  # the same on dev, at the chosen epoch and threshold
    threshold: float
    best_epoch: int
    labeled: int  # how many training rows were read with their labels
    seconds: float
    mode: str = "full"  # the mode chosen on dev: "probe" or "full"
    steps: int = 0  # optimizer steps taken, every mode together


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


def _build(genotype: Genotype | None, space: SpaceConfig, config: FinetuneConfig, data: NodeData, num_classes: int,
           network_state: dict[str, torch.Tensor] | None, device: torch.device) -> nn.Module:
    if config.model != "nas":
        shapes = [(level.shape[1], level.shape[2]) for level in data.levels]
        return build_no_search(config.model, shapes, data.node_modality, num_classes, config.hidden,
                               config.dropout).to(device)
    assert genotype is not None, "a 'nas' model needs a genotype"
    network = FixedNet(data.in_channels, genotype, space)
    if network_state is not None:
        network.load_state_dict(network_state)
    return Model(network, Classifier(network.out_features, num_classes, config.dropout)).to(device)


@dataclass
class _Session:
    """What every mode of one fine-tune run shares."""

    data: NodeData
    labels: torch.Tensor
    targets: torch.Tensor
    train: torch.Tensor  # the labeled rows
    dev: torch.Tensor
    budget: Budget
    runtime: Runtime
    reporter: Reporter
    config: FinetuneConfig
    total: int  # steps of every mode together: the progress line's denominator
    at_least_one: bool  # every labeled training row has a label: predict each sample's top label too


def _solved(mode: str, config: FinetuneConfig) -> bool:
    """Whether the mode's only trainable part is a linear head on fixed inputs (a probe, or the
    linear baseline): then it is solved by `linear_fit` in one step instead of trained."""
    return mode == "probe" or config.model == "linear"


def _linear_head(model: nn.Module) -> tuple[Callable[[list[torch.Tensor]], torch.Tensor], nn.Linear]:
    """(what the last layer reads, the last layer) of a probed network or of the linear baseline."""
    read: Callable[[list[torch.Tensor]], torch.Tensor]
    if isinstance(model, EarlyFusion):
        read, last = flat_nodes, model.net[-1]
    else:
        assert isinstance(model, Model), f"{type(model).__name__} has no linear head to solve"
        read, last = model.network, model.classifier.net[-1]
    assert isinstance(last, nn.Linear)
    return read, last


@torch.no_grad()
def _inputs_of_head(read: Callable[[list[torch.Tensor]], torch.Tensor], data: NodeData, rows: torch.Tensor,
                    batch_size: int) -> torch.Tensor:
    return torch.cat([read(data.batch(index)).float().cpu() for index in batch_indices(rows, batch_size, None, False)])


def _fit_mode(session: _Session, mode: str, first_epoch: int, first_step: int, model: nn.Module) -> dict[str, Any]:
    """A linear head on fixed inputs, solved (`linear_fit`) rather than trained: its L2 strength,
    decision threshold and weights chosen on dev."""
    read, head = _linear_head(model)
    model.eval()
    size = session.config.batch_size
    fit = fit_linear(_inputs_of_head(read, session.data, session.train, size), session.targets[session.train].cpu(),
                     _inputs_of_head(read, session.data, session.dev, size), session.labels[session.dev],
                     at_least_one=session.at_least_one)
    with torch.no_grad():
        head.weight.copy_(fit.weight)
        head.bias.copy_(fit.bias)
    step = first_step + 1  # one solve; its L-BFGS iterations are in the event below
    for key, value in fit.dev_f1.items():
        session.reporter.metric(f"f1_{key}", value, step=step, epoch=first_epoch, split="dev")
    session.reporter.metric("threshold", fit.threshold, step=step, epoch=first_epoch, split="dev")
    session.reporter.metric("l2", fit.l2, step=step, epoch=first_epoch, split="dev")
    session.reporter.event(f"finetune ({mode}): linear head solved by L-BFGS ({fit.iterations} iterations); "
                           f"L2 {fit.l2:g} chosen on dev (F1 weighted {fit.dev_f1['weighted']:.4f})")
    return {"dev_f1": fit.dev_f1["weighted"], "epoch": first_epoch, "threshold": fit.threshold, "dev": fit.dev_f1,
            "model": copy.deepcopy(model.state_dict()), "steps": step, "last_epoch": first_epoch + 1}


def _train_mode(session: _Session, mode: str, first_epoch: int, first_step: int, model: nn.Module,
                checkpoint_extra: dict[str, Any], resume: dict[str, Any] | None) -> dict[str, Any]:
    """Train all of `model` for the budget's epochs (numbered from `first_epoch`), keeping the best
    dev epoch; returns that best (dev F1, epoch, threshold, scores, weights). A probe never comes
    here: its linear head is solved (`_fit_mode`)."""
    config, data, reporter, runtime = session.config, session.data, session.reporter, session.runtime
    device = data.device
    params = list(model.parameters())
    optimizer = adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
    best = Best.start("dev_f1", -1.0, lambda: {"model": copy.deepcopy(model.state_dict())}, lower=False,
                      patience=config.patience, name="dev F1", threshold=0.5, dev={})
    loop = Loop("finetune", reporter, session.budget, (session.train,), runtime.seed, (model,), resume, best=best,
                first_epoch=first_epoch, first_step=first_step, total=session.total, label=f"finetune ({mode})",
                end=resume["last_epoch"] if resume is not None else None)
    train_forward = runtime.compiled(model)

    def step(batch: Batch) -> torch.Tensor:
        cosine_lr(optimizer, config.lr, config.lr_min, loop.progress)
        with runtime.autocast(device):
            logits = train_forward(data.batch(batch[0])).float()
        loss = multilabel_bce(logits, session.targets.index_select(0, batch[0].to(device)))
        descend(loss, optimizer, params, config.grad_clip)
        return loss

    def end_epoch(epoch: int, step: int) -> DevCheck:
        with runtime.autocast(device):
            threshold, dev_f1 = best_threshold(predict(model, data, session.dev, config.batch_size),
                                               session.labels[session.dev], at_least_one=session.at_least_one)
        for key, value in dev_f1.items():
            reporter.metric(f"f1_{key}", value, step=step, epoch=epoch, split="dev")
        reporter.metric("threshold", threshold, step=step, epoch=epoch, split="dev")
        return DevCheck(dev_f1["weighted"], {"threshold": threshold, "dev": dev_f1})

    def state() -> dict[str, Any]:
        return {"model": model.state_dict(), "mode": mode, "last_epoch": loop.end, "optimizer": optimizer.state_dict(),
                **checkpoint_extra}

    loop.run(step, end_epoch, state)
    return {**best.record, "steps": loop.at.step, "last_epoch": loop.at.epoch}


def finetune(
    features: FeatureSet,
    genotype: Genotype | None,
    space: SpaceConfig,
    config: FinetuneConfig,
    runtime: Runtime,
    reporter: Reporter,
    network_state: dict[str, torch.Tensor] | None = None,
    resume: dict[str, Any] | None = None,
) -> FinetuneResult:
    """Train and score a classifier; `network_state` is a pretrained FixedNet (None: from scratch).

    `genotype` may be None for a no-search baseline (`config.model` other than "nas").
    """
    started = time.perf_counter()
    device = runtime.torch_device()
    runtime.seed_everything(offset=2)
    data = NodeData(features, space.positions, device)
    labels = features.labels.float()
    train = labeled_subset(features.splits["train"], config.label_ratio, runtime.seed)
    budget = plan_budget(train.numel(), config.batch_size, config.epochs, config.min_steps)
    modes = config.modes
    if network_state is None and config.mode == "auto":
        modes = ("full",)  # probing a network nobody trained tells nothing
    session = _Session(data, labels, labels.to(device), train, features.splits["dev"], budget, runtime, reporter,
                       config, total=sum(1 if _solved(m, config) else budget.total for m in modes),
                       at_least_one=bool((labels[train].sum(1) > 0).all()))
    done: dict[str, dict[str, Any]] = dict(resume["modes_done"]) if resume is not None else {}
    if resume is None:
        reporter.event(budget.describe("finetune") + (f", per mode ({', '.join(modes)})" if len(modes) > 1 else ""))
        if genotype is not None:
            reporter.genotype(genotype, step=0, epoch=0)
    first_epoch, first_step = 0, 0
    for mode in modes:
        if mode in done:
            first_epoch, first_step = done[mode]["last_epoch"], done[mode]["steps"]
            continue
        runtime.seed_everything(offset=2)
        model = _build(genotype, space, config, data, features.num_classes, network_state, device)
        extra = {"modes_done": done, "genotype": genotype.to_dict() if genotype is not None else None,
                 "space": dataclasses.asdict(space), "in_channels": data.in_channels}
        mode_resume = resume if resume is not None and resume.get("mode") == mode else None
        if _solved(mode, config):
            done[mode] = _fit_mode(session, mode, first_epoch, first_step, model)
            at = Position(epoch=done[mode]["last_epoch"], step=done[mode]["steps"])
            reporter.checkpoint({"stage": "finetune", "position": at.to_dict(), "mode": mode,
                                 "model": model.state_dict(), **extra, "modes_done": dict(done)}, epoch=first_epoch)
        else:
            done[mode] = _train_mode(session, mode, first_epoch, first_step, model, extra, mode_resume)
        first_epoch, first_step = done[mode]["last_epoch"], done[mode]["steps"]
        resume = None
    chosen = max(modes, key=lambda m: done[m]["dev_f1"])  # ties keep the first (the probe: fewer parameters)
    best = done[chosen]
    model = _build(genotype, space, config, data, features.num_classes, None, device)
    model.load_state_dict(best["model"])
    threshold, test = best["threshold"], features.splits["test"]
    with runtime.autocast(device):
        test_f1 = f1_scores(predict(model, data, test, config.batch_size), labels[test], threshold,
                            at_least_one=session.at_least_one)
    for key, value in test_f1.items():
        reporter.metric(f"f1_{key}", value, step=first_step, epoch=best["epoch"], split="test")
    modes_text = "; ".join(f"{m}: dev F1 {done[m]['dev_f1']:.4f} at epoch {done[m]['epoch']}" for m in modes)
    reporter.event(
        f"finetune: {first_step} optimizer steps ({modes_text}); mode {chosen}, epoch {best['epoch']} and threshold "
        f"{threshold:.2f} chosen on dev; test F1 weighted {test_f1['weighted']:.4f}"
    )
    return FinetuneResult(test=test_f1, dev=best["dev"], threshold=threshold, best_epoch=best["epoch"],
                          labeled=int(train.numel()), seconds=time.perf_counter() - started, mode=chosen,
                          steps=first_step)
