"""The search stage: DARTS over the BM-NAS space, driven by a contrastive and/or supervised loss.

Network weights and architecture weights are updated alternately on two disjoint halves of the
training split. With `objective = "ssl"` the stage is handed a feature set whose labels cannot
be read at all, so that "searched without labels" is a property of the code, not a promise.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function

from ssnas.config.runtime import Runtime
from ssnas.config.stages import SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.data.pyramids import FeatureSet
from ssnas.data.splits import halves, labeled_subset
from ssnas.data.views import make_views
from ssnas.nas import architect
from ssnas.nas.batching import fuse_batches
from ssnas.nas.certainty import SearchCertainty, search_certainty
from ssnas.nas.derive import ArchWeights
from ssnas.nas.genotype import Genotype
from ssnas.nas.heads import Classifier, ProjectionHead
from ssnas.nas.space import SpaceConfig
from ssnas.nas.supernet import Supernet
from ssnas.objectives import multilabel_bce, ssl_loss
from ssnas.reporting import Reporter
from ssnas.stages.loop import Batch, Loop
from ssnas.stages.training import NodeData, adam, cosine_lr, descend, plan_budget, step_seed


@dataclass
class SearchResult:
    genotype: Genotype
    arch_weights: ArchWeights
    genotypes: list[Genotype]  # derived after each epoch
    certainty: SearchCertainty  # how sure the final weights are of each choice
    state: dict[str, Any]  # the final checkpoint
    seconds: float


class SearchObjective(nn.Module):
    """The supernet with the heads its objective needs, and the loss on one batch."""

    def __init__(self, supernet: Supernet, config: SearchConfig, views: ViewConfig, num_classes: int | None) -> None:
        super().__init__()
        self.supernet = supernet
        self.config = config
        self.views = views
        out = supernet.out_features
        self.projector = ProjectionHead(out, out_features=config.projection_dim) if config.uses_ssl else None
        self.view_loss = ssl_loss(config.ssl_loss)
        self.classifier: Classifier | None = None
        if config.uses_labels:
            assert num_classes is not None, "an objective with labels needs the number of classes"
            self.classifier = Classifier(out, num_classes)

    def loss(
        self,
        levels: list[torch.Tensor],
        node_modality: tuple[int, ...],
        generator: torch.Generator | None,
        targets: torch.Tensor | None = None,
        labeled: torch.Tensor | None = None,
        frozen_stem: bool = False,
        stacked: bool = True,
    ) -> torch.Tensor:
        """`labeled` masks the rows whose targets the supervised term may read (None: all).

        `stacked` fuses the views (and the clean nodes) in one pass, as `nas.batching` explains.
        """
        self.supernet.draw(generator)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen_stem):
            nodes = self.supernet.embed(levels)
        inputs = list(make_views(nodes, node_modality, self.views, generator)) if self.projector is not None else []
        if self.classifier is not None:
            inputs.append(nodes)
        fused = fuse_batches(self.supernet, inputs, stacked)
        total = torch.zeros((), device=levels[0].device)
        if self.projector is not None:
            z_a, z_b = self.projector(fused[0]), self.projector(fused[1])
            total = total + self.config.ssl_weight * self.view_loss(z_a, z_b, self.config.temperature)
        if self.classifier is not None:
            assert targets is not None, "an objective with labels needs the batch's targets"
            logits = self.classifier(fused[-1])
            if labeled is not None:
                logits, targets = logits[labeled], targets[labeled]
            if logits.shape[0]:
                total = total + self.config.supervised_weight * multilabel_bce(logits, targets)
        return total


def _search_rows(features: FeatureSet, config: SearchConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rows the search trains on, and (for a mixed objective) which of them are labeled."""
    train = features.splits["train"]
    if config.objective == "supervised":
        return labeled_subset(train, config.label_ratio, seed), None
    if config.objective == "ssl+supervised":
        return train, torch.isin(train, labeled_subset(train, config.label_ratio, seed))
    return train, None


def search(
    features: FeatureSet,
    space: SpaceConfig,
    config: SearchConfig,
    views: ViewConfig,
    runtime: Runtime,
    reporter: Reporter,
    resume: dict[str, Any] | None = None,
) -> SearchResult:
    """Run (or resume) a search; reports losses per step, weights and genotype per epoch."""
    started = time.perf_counter()
    if not config.uses_labels:
        features = features.without_labels()
    device = runtime.torch_device()
    runtime.seed_everything()
    data = NodeData(features, space.positions, device)
    rows, labeled_rows = _search_rows(features, config, runtime.seed)
    targets = features.labels.to(device).float() if config.uses_labels else None
    is_labeled = None
    if labeled_rows is not None:
        is_labeled = torch.zeros(features.num_samples, dtype=torch.bool, device=device)
        is_labeled[rows[labeled_rows].to(device)] = True
    weight_rows, arch_rows = halves(rows, runtime.seed)

    supernet = Supernet(data.in_channels, data.node_names, space, relaxation=config.relaxation)
    model = SearchObjective(supernet, config, views, features.num_classes if config.uses_labels else None).to(device)
    arch_params = supernet.arch_parameters()
    arch_ids = {id(p) for p in arch_params}
    weight_params = [p for p in model.parameters() if id(p) not in arch_ids]
    weight_opt = adam(weight_params, lr=config.lr, weight_decay=config.weight_decay)
    arch_opt = adam(arch_params, lr=config.arch_lr, betas=(0.5, 0.999), weight_decay=config.arch_weight_decay)
    genotypes: list[Genotype] = []
    if resume is not None:
        model.load_state_dict(resume["model"])
        weight_opt.load_state_dict(resume["weight_opt"])
        arch_opt.load_state_dict(resume["arch_opt"])
        genotypes = [Genotype.from_dict(g) for g in resume["genotypes"]]
    budget = plan_budget(min(weight_rows.numel(), arch_rows.numel()), config.batch_size, config.epochs,
                         config.min_steps)
    loop = Loop("search", reporter, budget, (weight_rows, arch_rows), runtime.seed, (model,), resume)
    model_loss = runtime.compiled(model.loss)

    def batch_loss(index: torch.Tensor, seed: int, frozen_stem: bool = False) -> torch.Tensor:
        """The loss on one batch; the same `seed` gives the same views (second order needs that)."""
        with runtime.autocast(device):
            return model_loss(
                data.batch(index),
                data.node_modality,
                torch.Generator().manual_seed(seed),
                targets=targets.index_select(0, index.to(device)) if targets is not None else None,
                labeled=is_labeled.index_select(0, index.to(device)) if is_labeled is not None else None,
                frozen_stem=frozen_stem,
                stacked=runtime.batch_views,
            ).float()

    def step(batch: Batch) -> torch.Tensor:
        """A network step on the batch of one half, then an architecture step on that of the other."""
        weight_batch, arch_batch = batch
        at = loop.at
        cosine_lr(weight_opt, config.lr, config.lr_min, loop.progress)
        supernet.tau = config.tau_max - (config.tau_max - config.tau_min) * at.step / max(1, budget.total - 1)
        with record_function("search/network_step"):
            for p in arch_params:
                p.requires_grad_(False)
            loss = batch_loss(weight_batch, step_seed(runtime.seed, at.step, 0))
            descend(loss, weight_opt, weight_params, config.grad_clip)
            for p in arch_params:
                p.requires_grad_(True)

        arch_seed, train_seed = step_seed(runtime.seed, at.step, 1), step_seed(runtime.seed, at.step, 2)
        with record_function("search/architecture_step"):
            arch_opt.zero_grad(set_to_none=True)
            if config.order == "first":
                arch_loss = architect.first_order(arch_params, lambda: batch_loss(arch_batch, arch_seed, True))
            else:
                arch_loss = architect.second_order(
                    arch_params,
                    weight_params,
                    lambda: batch_loss(weight_batch, train_seed),
                    lambda: batch_loss(arch_batch, arch_seed),
                    xi=weight_opt.param_groups[0]["lr"],
                )
            arch_opt.step()
        at.side_losses.append(float(arch_loss.detach()))
        return loss

    def end_epoch(epoch: int, step: int) -> None:
        """The genotype and the architecture's weights and certainty after the epoch."""
        genotype = supernet.genotype()
        genotypes.append(genotype)
        arch_losses = loop.at.side_losses
        reporter.metric("epoch_loss", sum(arch_losses) / len(arch_losses), step=step, epoch=epoch, split="arch")
        reporter.metric("lr", weight_opt.param_groups[0]["lr"], step=step, epoch=epoch)
        weights = supernet.arch_weights()
        for key, value in search_certainty(weights).as_metrics().items():
            reporter.metric(key, value, step=step, epoch=epoch, split="arch")
        reporter.arch_weights(weights, step=step, epoch=epoch)
        reporter.genotype(genotype, step=step, epoch=epoch)

    def state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "weight_opt": weight_opt.state_dict(),
            "arch_opt": arch_opt.state_dict(),
            "genotypes": [g.to_dict() for g in genotypes],
            "space": dataclasses.asdict(space),
            "in_channels": data.in_channels,
        }

    if loop.at.step == 0:
        reporter.event(budget.describe("search"))
        reporter.arch_weights(supernet.arch_weights(), step=0, epoch=0)
    loop.run(step, end_epoch, state)
    final_weights = supernet.arch_weights()
    certainty = search_certainty(final_weights)
    reporter.event(certainty.verdict(), level="info" if certainty.decided else "warning")
    return SearchResult(
        genotype=supernet.genotype(),
        arch_weights=final_weights,
        genotypes=genotypes,
        certainty=certainty,
        state={"model": model.state_dict(), "space": dataclasses.asdict(space), "in_channels": data.in_channels},
        seconds=time.perf_counter() - started,
    )
