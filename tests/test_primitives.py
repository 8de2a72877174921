import pytest
import torch

from ssnas.nas.primitives import PRIMITIVE_FACTORIES, build_primitive
from ssnas.nas.vocabulary import DEFAULT_PRIMITIVES, PRIMITIVES

B, L, C = 3, 4, 8


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_shape_and_gradients(name):
    torch.manual_seed(0)
    op = build_primitive(name, C, L, dropout=0.0)
    x = torch.randn(B, L, C, requires_grad=True)
    y = torch.randn(B, L, C, requires_grad=True)
    out = op(x, y)
    assert out.shape == (B, L, C)
    assert torch.isfinite(out).all()
    if name == "zero":
        assert torch.count_nonzero(out) == 0 and not out.requires_grad
        return
    (out * torch.randn_like(out)).sum().backward()
    # every other primitive reads both inputs, and its parameters all learn
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is not None and y.grad.abs().sum() > 0
    for pname, p in op.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_default_primitives_are_the_papers_five():
    assert DEFAULT_PRIMITIVES == ("zero", "sum", "attention", "linear_glu", "concat_fc")
    assert set(PRIMITIVE_FACTORIES) == set(PRIMITIVES)


def test_attention_attends_over_positions_of_y():
    op = build_primitive("attention", C, L, dropout=0.0)
    x = torch.randn(1, L, C)
    y = torch.randn(1, L, C)
    # permuting y's positions leaves attention over them unchanged (keys and values move together)
    perm = torch.randperm(L)
    torch.testing.assert_close(op(x, y), op(x, y[:, perm]))
    # but permuting x's positions permutes the output rows before the LayerNorm, so it changes
    assert not torch.allclose(op(x, y), op(x[:, perm], y))


def test_concat_primitives_are_not_symmetric_in_general():
    torch.manual_seed(0)
    for name in ("linear_glu", "concat_fc", "concat_conv_mish"):
        op = build_primitive(name, C, L).eval()
        x, y = torch.randn(B, L, C), torch.randn(B, L, C)
        assert not torch.allclose(op(x, y), op(y, x)), name
