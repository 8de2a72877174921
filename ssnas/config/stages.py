"""Settings of the three stages (the recipe's `[search]`, `[pretrain]`, `[finetune]`) as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from ssnas import plugins
from ssnas.errors import ConfigError

OBJECTIVES = ("ssl", "supervised", "ssl+supervised")
# The label-free loss between two views' embeddings of the "ssl" objectives (ssnas.objectives.ssl_loss);
# plugins add others (entry-point group `ssnas.objectives`).
SSL_LOSSES: tuple[str, ...] = ("nt_xent",)
RELAXATIONS = ("softmax", "gumbel")  # DARTS's weighted sum; GDAS's sampled one-hot choice
FINETUNE_MODES = ("auto", "full", "probe")
# What the fine-tune stage trains: the genotype's network ("nas"), or a no-search baseline on all
# input nodes concatenated (a linear model, an MLP) or one head per modality averaged (late fusion).
FINETUNE_MODELS = ("nas", "linear", "mlp", "late_fusion")


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def _known_ssl_loss(section: str, name: str) -> None:
    _one_of(f"{section}.ssl_loss", name, plugins.known_names(plugins.OBJECTIVES_GROUP))


def _positive(section: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{section}.{name}: {value} is out of range (> 0)")


def _non_negative(section: str, **values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ConfigError(f"{section}.{name}: {value} is out of range (>= 0)")


def _ratio(section: str, label_ratio: float) -> None:
    if not 0.0 < label_ratio <= 1.0:
        raise ConfigError(f"{section}.label_ratio: {label_ratio} is out of range (0, 1]")


@dataclass(frozen=True)
class SearchConfig:
    objective: str = "ssl"  # "ssl" (no labels), "supervised" (BM-NAS) or "ssl+supervised"
    epochs: int = 12
    batch_size: int = 96
    lr: float = 1e-3  # network weights: Adam, cosine down to lr_min (BM-NAS)
    lr_min: float = 1e-6
    weight_decay: float = 1e-4
    # Architecture weights: Adam, betas (0.5, 0.999). BM-NAS uses lr 3e-4 and weight decay 1e-3;
    # Adam moves a logit by about lr per step whatever the gradient's size, so at 3e-4 a few hundred
    # steps leave the weights within a point of uniform (docs/RESULTS.md, "Does the search decide").
    arch_lr: float = 3e-2
    arch_weight_decay: float = 0.0
    relaxation: str = "softmax"  # "softmax" (DARTS) or "gumbel" (GDAS: one sampled choice per step)
    tau_max: float = 10.0  # gumbel: temperature at the first step, annealed to tau_min at the last
    tau_min: float = 0.1
    min_steps: int = 400  # at least this many (network + architecture) steps, however few the rows
    order: str = "first"  # "first" or "second" order DARTS
    ssl_loss: str = "nt_xent"  # the label-free loss between the two views: NT-Xent, or a plugin's
    temperature: float = 0.1  # NT-Xent temperature (handed to a plugin's loss too)
    label_ratio: float = 1.0  # labeled fraction the supervised term may read
    ssl_weight: float = 1.0  # weights of the two terms of "ssl+supervised"
    supervised_weight: float = 1.0
    grad_clip: float = 5.0
    projection_dim: int = 128

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"search.objective: {self.objective!r} is not one of {', '.join(OBJECTIVES)}")
        if self.order not in ("first", "second"):
            raise ConfigError(f"search.order: {self.order!r} is not 'first' or 'second'")
        _one_of("search.relaxation", self.relaxation, RELAXATIONS)
        _known_ssl_loss("search", self.ssl_loss)
        _positive("search", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, arch_lr=self.arch_lr,
                  temperature=self.temperature, grad_clip=self.grad_clip, projection_dim=self.projection_dim,
                  tau_max=self.tau_max, tau_min=self.tau_min)
        _non_negative("search", lr_min=self.lr_min, weight_decay=self.weight_decay,
                      arch_weight_decay=self.arch_weight_decay, ssl_weight=self.ssl_weight,
                      supervised_weight=self.supervised_weight, min_steps=self.min_steps)
        if self.tau_min > self.tau_max:
            raise ConfigError(f"search.tau_min: {self.tau_min} is above search.tau_max ({self.tau_max})")
        _ratio("search", self.label_ratio)

    @property
    def uses_labels(self) -> bool:
        return self.objective != "ssl"

    @property
    def uses_ssl(self) -> bool:
        return self.objective != "supervised"


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 10
    batch_size: int = 96
    lr: float = 1e-3
    lr_min: float = 1e-6
    weight_decay: float = 1e-4
    ssl_loss: str = "nt_xent"  # the label-free loss between the two views: NT-Xent, or a plugin's
    temperature: float = 0.1
    grad_clip: float = 5.0
    projection_dim: int = 128
    min_steps: int = 300  # at least this many optimizer steps, however few the rows

    def __post_init__(self) -> None:
        _known_ssl_loss("pretrain", self.ssl_loss)
        _positive("pretrain", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                  temperature=self.temperature, grad_clip=self.grad_clip, projection_dim=self.projection_dim)
        _non_negative("pretrain", lr_min=self.lr_min, weight_decay=self.weight_decay, min_steps=self.min_steps)


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 20
    batch_size: int = 96
    lr: float = 1e-3
    lr_min: float = 1e-6
    weight_decay: float = 1e-4
    label_ratio: float = 1.0  # r: the seeded fraction of the training split whose labels are read
    # "probe": train a linear head on the frozen network; "full": train both; "auto": each in turn,
    # keeping the one with the better dev F1 (tens of labels often favour the probe).
    mode: str = "auto"
    model: str = "nas"  # "nas" (the genotype's network) or a no-search baseline (FINETUNE_MODELS)
    hidden: int = 256  # width of the "mlp" and "late_fusion" baselines' hidden layer
    dropout: float = 0.1  # before the classifier
    grad_clip: float = 5.0
    min_steps: int = 300  # at least this many optimizer steps per mode, however few the labels
    patience: int = 0  # stop after this many epochs without a better dev F1 (0: never)

    def __post_init__(self) -> None:
        _one_of("finetune.mode", self.mode, FINETUNE_MODES)
        _one_of("finetune.model", self.model, FINETUNE_MODELS)
        _positive("finetune", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, grad_clip=self.grad_clip,
                  hidden=self.hidden)
        _non_negative("finetune", lr_min=self.lr_min, weight_decay=self.weight_decay, min_steps=self.min_steps,
                      patience=self.patience)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"finetune.dropout: {self.dropout} is out of range [0, 1)")
        _ratio("finetune", self.label_ratio)

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes trained in turn; a baseline has no encoder to freeze, so it trains in full."""
        if self.model != "nas":
            return ("full",)
        return ("probe", "full") if self.mode == "auto" else (self.mode,)
