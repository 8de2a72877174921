"""How the two label-free views of a batch are made (the recipe's `[views]`); `ssnas.data.views` makes them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ssnas import plugins
from ssnas.errors import ConfigError

VIEW_POLICIES: tuple[str, ...] = ("cross_modal", "instance")  # plugins add others (group `ssnas.view_policies`)


@dataclass(frozen=True)
class ViewConfig:
    """How the two views of a batch are made (the recipe's `[views]` section)."""

    # "cross_modal": disjoint modality subsets per view; "instance": all modalities; or a plugin's policy
    policy: str = "cross_modal"
    noise: float = 0.1  # std of additive Gaussian noise
    channel_dropout: float = 0.1  # prob. of zeroing a channel (per sample, node, channel); survivors scaled 1/(1-p)
    position_mask: float = 0.1  # prob. of zeroing a position (per sample, node, position)
    modality_dropout: float = 0.0  # prob. (per sample) of blanking one random modality, never all; "instance" only
    level_mix: float = 0.0  # per sample and node: x <- (1-lam) x + lam x_other_level, lam ~ U(0, level_mix)

    def __post_init__(self) -> None:
        known = plugins.known_names(plugins.VIEW_POLICIES_GROUP)
        if self.policy not in known:
            raise ConfigError(f"views.policy: {self.policy!r} is not one of {', '.join(known)}")
        _check_range("noise", self.noise, 0.0, math.inf, "(>= 0)")
        for name in ("channel_dropout", "position_mask", "modality_dropout"):
            _check_range(name, getattr(self, name), 0.0, 1.0, "([0, 1))", upper_open=True)
        _check_range("level_mix", self.level_mix, 0.0, 1.0, "([0, 1])")
        if self.policy == "cross_modal" and self.modality_dropout > 0:
            raise ConfigError(
                f"views.modality_dropout: {self.modality_dropout} applies to policy 'instance' only; "
                "'cross_modal' already hides modalities (set it to 0)"
            )


def _check_range(name: str, value: object, low: float, high: float, text: str, upper_open: bool = False) -> None:
    in_range = (
        isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
        and (low <= value < high if upper_open else low <= value <= high)
    )
    if not in_range:
        raise ConfigError(f"views.{name}: {value} is out of range {text}")
