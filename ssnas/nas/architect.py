"""Architecture-weight gradients: DARTS's first-order and second-order (unrolled) estimates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

LossFn = Callable[[], torch.Tensor]


def _grads(loss: torch.Tensor, params: Sequence[nn.Parameter]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def first_order(arch: Sequence[nn.Parameter], val_loss: LossFn) -> torch.Tensor:
    """Gradient of the validation loss at the current weights; sets `.grad` and returns the loss."""
    loss = val_loss()
    for p, g in zip(arch, _grads(loss, arch), strict=True):
        p.grad = g
    return loss


def second_order(
    arch: Sequence[nn.Parameter], weights: Sequence[nn.Parameter], train_loss: LossFn, val_loss: LossFn, xi: float
) -> torch.Tensor:
    """DARTS's unrolled gradient: d/dalpha L_val(w - xi * dL_train/dw, alpha).

    The second-order term is a Hessian-vector product estimated by central finite differences,
    as in DARTS. Loss functions must draw the same batch and views on every call.
    """
    backup = [w.detach().clone() for w in weights]
    virtual_step = _grads(train_loss(), weights)
    with torch.no_grad():
        for w, g in zip(weights, virtual_step, strict=True):
            w.sub_(xi * g)
    loss = val_loss()
    both = _grads(loss, [*arch, *weights])
    d_arch, d_weights = both[: len(arch)], both[len(arch) :]
    squares = sum(((g * g).sum() for g in d_weights), d_weights[0].new_zeros(()))  # a tensor start: typed as one
    norm = torch.sqrt(squares).clamp_min(1e-12)
    eps = 0.01 / norm

    def arch_grads_at(sign: float) -> list[torch.Tensor]:
        with torch.no_grad():
            for w, saved, g in zip(weights, backup, d_weights, strict=True):
                w.copy_(saved + sign * eps * g)
        return _grads(train_loss(), arch)

    plus, minus = arch_grads_at(1.0), arch_grads_at(-1.0)
    with torch.no_grad():
        for w, saved in zip(weights, backup, strict=True):
            w.copy_(saved)
    for p, d, gp, gm in zip(arch, d_arch, plus, minus, strict=True):
        p.grad = d - xi * (gp - gm) / (2 * eps)
    return loss
