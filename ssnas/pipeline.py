"""search -> pretrain -> fine-tune in one process: the method end to end, as a library call.

The experiment manager runs each stage as its own worker; this is the same chain for notebooks,
benchmarks and `python -m ssnas`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.data.pyramids import FeatureSet
from ssnas.nas.binding import bind
from ssnas.nas.genotype import Genotype
from ssnas.nas.space import SpaceConfig
from ssnas.reporting import Reporter
from ssnas.stages.finetune import FinetuneResult, finetune
from ssnas.stages.pretrain import PretrainResult, pretrain
from ssnas.stages.search import SearchResult, search


@dataclass(frozen=True)
class PipelineConfig:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    views: ViewConfig = field(default_factory=ViewConfig)
    pretrain: PretrainConfig | None = field(default_factory=PretrainConfig)  # None: fine-tune from scratch
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    runtime: Runtime = field(default_factory=Runtime)


@dataclass
class PipelineResult:
    genotype: Genotype
    search: SearchResult | None
    pretrain: PretrainResult | None
    finetune: FinetuneResult


def train_genotype(
    features: FeatureSet, genotype: Genotype, config: PipelineConfig, reporter: Reporter
) -> tuple[PretrainResult | None, FinetuneResult]:
    """Pretrain (when configured) and fine-tune one genotype: what every arm ends with. The genotype is
    bound to the data's input nodes by name (refused when it reads nodes the data lacks)."""
    genotype = bind(genotype, features.node_names, dataset=features.source or "the dataset")
    pretrained = None
    if config.pretrain is not None:
        pretrained = pretrain(features, genotype, config.space, config.pretrain, config.views, config.runtime, reporter)
    state = pretrained.network_state if pretrained is not None else None
    tuned = finetune(features, genotype, config.space, config.finetune, config.runtime, reporter, network_state=state)
    return pretrained, tuned


def run_pipeline(features: FeatureSet, config: PipelineConfig, reporter: Reporter) -> PipelineResult:
    """Search a genotype, then pretrain and fine-tune it."""
    searched = search(features, config.space, config.search, config.views, config.runtime, reporter)
    reporter.event("search: found " + searched.genotype.describe().replace("\n", "; "))
    pretrained, tuned = train_genotype(features, searched.genotype, config, reporter)
    return PipelineResult(searched.genotype, searched, pretrained, tuned)
