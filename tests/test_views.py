import pytest
import torch

from ssnas.config.views import VIEW_POLICIES, ViewConfig
from ssnas.data.views import make_views
from ssnas.errors import ConfigError

ZERO = dict(noise=0.0, channel_dropout=0.0, position_mask=0.0)


def make_nodes(node_modality, batch=64, length=4, channels=8, seed=0):
    """Strictly positive inputs, so that a zero in a view is something the view did."""
    gen = torch.Generator().manual_seed(seed)
    return [0.5 + torch.rand(batch, length, channels, generator=gen) for _ in node_modality]


def shown_modalities(view, node_modality):
    """(B, M) bool: which modalities have any non-zero value in the view, per sample."""
    num = max(node_modality) + 1
    shown = torch.zeros(view[0].shape[0], num, dtype=torch.bool)
    for x, m in zip(view, node_modality):
        shown[:, m] |= (x != 0).flatten(1).any(1)
    return shown


def test_policies():
    assert VIEW_POLICIES == ("cross_modal", "instance")
    assert ViewConfig().policy == "cross_modal"


@pytest.mark.parametrize("policy", VIEW_POLICIES)
def test_shapes_dtype_preserved(policy):
    modality = (0, 0, 0, 0, 1, 1)
    nodes = [x.double() for x in make_nodes(modality, batch=5, length=16, channels=12)]
    config = ViewConfig(policy=policy, level_mix=0.3)
    view_a, view_b = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    for view in (view_a, view_b):
        assert [tuple(x.shape) for x in view] == [tuple(x.shape) for x in nodes]
        assert all(x.dtype == torch.float64 for x in view)
    view_a, _ = make_views([x.to(torch.bfloat16) for x in nodes], modality, ViewConfig(policy=policy))  # global RNG
    assert all(x.dtype == torch.bfloat16 for x in view_a)


@pytest.mark.parametrize("modality", [(0, 0, 0, 0, 1, 1), (0, 0, 1, 2, 2)])
def test_cross_modal_views_show_complementary_modalities(modality):
    num = max(modality) + 1
    nodes = make_nodes(modality, batch=256)
    view_a, view_b = make_views(nodes, modality, ViewConfig(level_mix=0.5), torch.Generator().manual_seed(0))
    shown_a, shown_b = shown_modalities(view_a, modality), shown_modalities(view_b, modality)
    assert (shown_a ^ shown_b).all()  # each modality in exactly one view
    assert shown_a.any(1).all() and shown_b.any(1).all()  # neither view empty
    # a hidden node is exactly zero: nothing (not even noise) leaks from the other view's modalities
    for x, m in zip(view_a, modality):
        assert (x[~shown_a[:, m]] == 0).all()
    # every non-empty proper subset is drawn, per sample
    subsets = {tuple(row.tolist()) for row in shown_a}
    assert len(subsets) == 2**num - 2


def test_cross_modal_zero_strengths_pass_shown_nodes_unchanged():
    modality = (0, 0, 1)
    nodes = make_nodes(modality)
    view_a, view_b = make_views(nodes, modality, ViewConfig(**ZERO), torch.Generator().manual_seed(0))
    for x, a, b in zip(nodes, view_a, view_b):
        torch.testing.assert_close(a + b, x)  # each value shown in exactly one view, unchanged


def test_cross_modal_needs_two_modalities():
    with pytest.raises(ConfigError, match="views.policy"):
        make_views(make_nodes((0, 0)), (0, 0), ViewConfig())


@pytest.mark.parametrize("policy", VIEW_POLICIES)
def test_deterministic_with_generator(policy):
    modality = (0, 0, 1, 1)
    nodes = make_nodes(modality)
    extra = dict(modality_dropout=0.3) if policy == "instance" else {}
    config = ViewConfig(policy=policy, level_mix=0.5, **extra)
    first = make_views(nodes, modality, config, torch.Generator().manual_seed(3))
    second = make_views(nodes, modality, config, torch.Generator().manual_seed(3))
    other = make_views(nodes, modality, config, torch.Generator().manual_seed(4))
    for a, b, c in zip(first[0] + first[1], second[0] + second[1], other[0] + other[1]):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_instance_zero_strengths_is_identity():
    modality = (0, 0, 1)
    nodes = make_nodes(modality)
    view_a, view_b = make_views(nodes, modality, ViewConfig(policy="instance", **ZERO))
    for x, a, b in zip(nodes, view_a, view_b):
        assert torch.equal(a, x) and torch.equal(b, x)


def test_instance_views_differ():
    modality = (0, 1)
    nodes = make_nodes(modality)
    view_a, view_b = make_views(nodes, modality, ViewConfig(policy="instance"), torch.Generator().manual_seed(0))
    assert all(not torch.equal(a, b) for a, b in zip(view_a, view_b))


def test_channel_dropout_rate_and_rescale():
    modality = (0, 1)
    nodes = make_nodes(modality, batch=512, length=4, channels=32)
    config = ViewConfig(policy="instance", noise=0.0, channel_dropout=0.3, position_mask=0.0)
    view_a, _ = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    for x, a in zip(nodes, view_a):
        dropped = (a == 0).all(1)  # (B, C): a whole channel zeroed
        assert (a == 0).any(1).eq(dropped).all()  # zeroing is per channel, across all positions
        assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.02)
        kept = a != 0
        torch.testing.assert_close(a[kept], x[kept] / 0.7)


def test_position_mask_rate_without_rescale():
    modality = (0, 1)
    nodes = make_nodes(modality, batch=512, length=16, channels=4)
    config = ViewConfig(policy="instance", noise=0.0, channel_dropout=0.0, position_mask=0.25)
    view_a, _ = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    for x, a in zip(nodes, view_a):
        masked = (a == 0).all(2)  # (B, L): a whole position zeroed
        assert (a == 0).any(2).eq(masked).all()
        assert masked.float().mean().item() == pytest.approx(0.25, abs=0.02)
        assert torch.equal(a[a != 0], x[a != 0])


def test_noise_std():
    modality = (0, 1)
    nodes = make_nodes(modality, batch=256, length=8, channels=16)
    config = ViewConfig(policy="instance", noise=0.2, channel_dropout=0.0, position_mask=0.0)
    view_a, view_b = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    for x, a, b in zip(nodes, view_a, view_b):
        assert (a - x).std().item() == pytest.approx(0.2, rel=0.05)
        assert (a - x).mean().item() == pytest.approx(0.0, abs=0.01)
        assert (a - b).std().item() == pytest.approx(0.2 * 2**0.5, rel=0.05)  # independent per view


def test_level_mix_within_modality():
    modality = (0, 0, 1)
    batch = 2048
    nodes = [torch.full((batch, 4, 3), 1.0), torch.full((batch, 4, 3), 3.0), torch.full((batch, 4, 3), 5.0)]
    config = ViewConfig(policy="instance", level_mix=0.5, **ZERO)
    view_a, _ = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    mixed = view_a[0]
    # x <- (1 - lam) 1 + lam 3 = 1 + 2 lam, lam ~ U(0, 0.5): one value per sample, in [1, 2], mean 1.5
    assert (mixed == mixed[:, :1, :1]).all()
    assert mixed.min() >= 1.0 and mixed.max() <= 2.0
    assert mixed.mean().item() == pytest.approx(1.5, abs=0.03)
    # 3 mixed with 1: 3 - 2 lam, in [2, 3]; a single-level modality is left alone
    assert view_a[1].min() >= 2.0 and view_a[1].max() <= 3.0
    assert torch.equal(view_a[2], nodes[2])


def test_level_mix_picks_other_levels_only():
    modality = (0, 0, 0)
    batch = 1024
    nodes = [torch.full((batch, 1, 1), v) for v in (0.0, 10.0, 100.0)]
    config = ViewConfig(policy="instance", level_mix=1.0, **ZERO)
    view_a, _ = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    # level 0 mixes with 10 or 100 (never with itself): values in [0, 10] and [0, 100], both drawn
    values = view_a[0].flatten()
    assert (values > 10).float().mean().item() == pytest.approx(0.45, abs=0.06)  # half pick 100, lam > 0.1


@pytest.mark.parametrize("modality", [(0, 0, 1, 1), (0, 1, 2, 2)])
def test_modality_dropout_never_blanks_all(modality):
    num = max(modality) + 1
    nodes = make_nodes(modality, batch=2048)
    config = ViewConfig(policy="instance", modality_dropout=0.5, **ZERO)
    view_a, view_b = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    for view in (view_a, view_b):
        hidden = ~shown_modalities(view, modality)
        assert hidden.sum(1).max().item() <= 1  # at most one modality blanked, so never all
        assert hidden.any(1).float().mean().item() == pytest.approx(0.5, abs=0.04)
        per_modality = hidden.float().mean(0)
        assert torch.allclose(per_modality, torch.full((num,), 0.5 / num), atol=0.04)


def test_inputs_not_modified():
    modality = (0, 0, 1, 1)
    nodes = make_nodes(modality)
    before = [x.clone() for x in nodes]
    for policy, extra in (("cross_modal", {}), ("instance", dict(modality_dropout=0.5))):
        make_views(nodes, modality, ViewConfig(policy=policy, level_mix=0.5, **extra), torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip(nodes, before))


@pytest.mark.parametrize("policy", VIEW_POLICIES)
def test_gradients_flow_to_inputs(policy):
    modality = (0, 0, 1, 1)
    nodes = [x.requires_grad_() for x in make_nodes(modality, batch=16)]
    config = ViewConfig(policy=policy, level_mix=0.5)
    view_a, view_b = make_views(nodes, modality, config, torch.Generator().manual_seed(0))
    sum(v.square().sum() for v in view_a + view_b).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in nodes)


@pytest.mark.parametrize(
    "field, value",
    [
        ("noise", -1),
        ("noise", float("nan")),
        ("channel_dropout", 1.0),
        ("channel_dropout", -0.1),
        ("position_mask", 1.5),
        ("modality_dropout", 1.0),
        ("level_mix", 1.01),
        ("level_mix", -0.5),
        ("policy", "mixup"),
    ],
)
def test_bad_config_names_field(field, value):
    extra = dict(policy="instance") if field == "modality_dropout" else {}
    with pytest.raises(ConfigError, match=f"views.{field}"):
        ViewConfig(**{field: value, **extra})


def test_bad_config_message():
    with pytest.raises(ConfigError, match=r"^views.noise: -1 is out of range \(>= 0\)$"):
        ViewConfig(noise=-1)


def test_modality_dropout_is_instance_only():
    ViewConfig(policy="instance", modality_dropout=0.5)
    with pytest.raises(ConfigError, match="views.modality_dropout"):
        ViewConfig(modality_dropout=0.5)


def test_node_modality_length_mismatch():
    with pytest.raises(ValueError):
        make_views(make_nodes((0, 1)), (0, 1, 1), ViewConfig())
