"""The solved linear head: it converges where a few hundred Adam steps do not, and picks L2 on dev."""

import torch

from ssnas.stages.linear_fit import fit_linear


def test_a_separable_problem_is_solved_and_l2_is_chosen_on_dev():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    classes = (x @ torch.randn(5, 3, generator=g)).argmax(1)  # three linearly separable classes
    y = torch.nn.functional.one_hot(classes, 3).float()
    fit = fit_linear(x[:200], y[:200], x[200:], y[200:], at_least_one=True)
    assert fit.dev_f1["weighted"] > 0.85
    assert fit.l2 in (1e-4, 1e-3, 1e-2, 1e-1) and fit.iterations > 0
    assert fit.weight.shape == (3, 5) and fit.bias.shape == (3,)
    strong = fit_linear(x[:200], y[:200], x[200:], y[200:], grid=(10.0,))
    assert strong.weight.abs().max() < fit.weight.abs().max()  # a heavy penalty shrinks the weights
