"""Settings of the three stages as frozen dataclasses (torch-free, so recipes can build them)."""

from __future__ import annotations

from dataclasses import dataclass

from ssnas.errors import ConfigError

OBJECTIVES = ("ssl", "supervised", "ssl+supervised")


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
    arch_lr: float = 3e-4  # architecture weights: Adam, betas (0.5, 0.999) (BM-NAS / DARTS)
    arch_weight_decay: float = 1e-3
    order: str = "first"  # "first" or "second" order DARTS
    temperature: float = 0.1  # NT-Xent temperature
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
        _positive("search", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, arch_lr=self.arch_lr,
                  temperature=self.temperature, grad_clip=self.grad_clip, projection_dim=self.projection_dim)
        _non_negative("search", lr_min=self.lr_min, weight_decay=self.weight_decay,
                      arch_weight_decay=self.arch_weight_decay, ssl_weight=self.ssl_weight,
                      supervised_weight=self.supervised_weight)
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
    temperature: float = 0.1
    grad_clip: float = 5.0
    projection_dim: int = 128

    def __post_init__(self) -> None:
        _positive("pretrain", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                  temperature=self.temperature, grad_clip=self.grad_clip, projection_dim=self.projection_dim)
        _non_negative("pretrain", lr_min=self.lr_min, weight_decay=self.weight_decay)


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 20
    batch_size: int = 96
    lr: float = 1e-3
    lr_min: float = 1e-6
    weight_decay: float = 1e-4
    label_ratio: float = 1.0  # r: the seeded fraction of the training split whose labels are read
    freeze_encoder: bool = False  # True: train the classifier only (a linear probe)
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        _positive("finetune", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, grad_clip=self.grad_clip)
        _non_negative("finetune", lr_min=self.lr_min, weight_decay=self.weight_decay)
        _ratio("finetune", self.label_ratio)
