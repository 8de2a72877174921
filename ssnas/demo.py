"""The settings and the printed summary of `ssnas demo` / `python -m ssnas` (the embedded demo)."""

from __future__ import annotations

from dataclasses import replace
from typing import TypedDict

from ssnas.baselines import load_baseline
from ssnas.config.data import SyntheticConfig
from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.data.synthetic import planted_recovery
from ssnas.nas.genotype import Genotype, diff
from ssnas.nas.space import SpaceConfig
from ssnas.pipeline import PipelineConfig, PipelineResult

# Small enough to finish in about a minute on a 2-core laptop CPU, large enough that the
# architecture matters: C and the epochs are scaled down from BM-NAS's MM-IMDB settings.
DEMO_SPACE = SpaceConfig(cells=2, steps=1, channels=32, positions=16, cell_multiplier=2, dropout=0.1)
DEMO_DATA = SyntheticConfig()


class _StageLength(TypedDict, total=False):
    """The keyword arguments that set how long a stage trains."""

    epochs: int
    min_steps: int


def demo_config(
    label_ratio: float, seed: int, device: str, epochs: int | None = None, bf16: bool = False
) -> tuple[PipelineConfig, SyntheticConfig]:
    """`epochs` (when given) is exactly what every stage runs: no minimum step count stretches it."""

    def e(default: int) -> _StageLength:
        return {"epochs": default} if epochs is None else {"epochs": epochs, "min_steps": 0}

    config = PipelineConfig(
        space=DEMO_SPACE,
        search=SearchConfig(objective="ssl", batch_size=96, temperature=0.2, **e(10)),
        views=ViewConfig(),
        pretrain=PretrainConfig(batch_size=96, temperature=0.2, **e(10)),
        finetune=FinetuneConfig(batch_size=32, label_ratio=label_ratio, **e(20)),
        runtime=Runtime(seed=seed, device=device, bf16=bf16),
    )
    return config, replace(DEMO_DATA, seed=seed)


def used_input_nodes(genotype: Genotype) -> set[str]:
    """The input nodes a genotype's cells fuse."""
    return set(genotype.used_input_names)


def format_summary(result: PipelineResult, data: SyntheticConfig) -> str:
    genotype = result.genotype
    baseline = load_baseline("bmnas-mmimdb")
    lines = ["", "found genotype:", genotype.describe(), ""]
    lines.append(f"planted nodes {', '.join(data.planted_nodes)}: "
                 f"recovery {planted_recovery(used_input_nodes(genotype), data.planted_nodes):.2f} "
                 "(Jaccard of fused input nodes)")
    lines.append(f"similarity to bmnas-mmimdb: {diff(genotype, baseline).similarity:.2f}")
    lines.append("")
    tuned = result.finetune
    lines.append(f"{'split':<6} {'weighted':>9} {'macro':>7} {'micro':>7} {'samples':>8}")
    for split, f1 in (("dev", tuned.dev), ("test", tuned.test)):
        lines.append(f"{split:<6} {f1['weighted']:>9.4f} {f1['macro']:>7.4f} {f1['micro']:>7.4f} {f1['samples']:>8.4f}")
    lines.append(f"(epoch {tuned.best_epoch} and threshold {tuned.threshold:.2f} chosen on dev; "
                 f"{tuned.labeled} labeled training rows)")
    return "\n".join(lines)
