"""The supernet and the fixed network compute the same function on a one-hot genotype."""

import random

import pytest
import torch

from ssnas.nas.fixed import FixedNet
from ssnas.nas.genotype import Genotype, random_genotype
from ssnas.nas.space import SpaceConfig
from ssnas.nas.supernet import Supernet
from ssnas.nas.vocabulary import PRIMITIVES

NAMES = ("a[0]", "a[1]", "a[2]", "b[0]", "b[1]")
IN_CHANNELS = [6, 5, 7, 3, 4]


def levels(batch=4, positions=4):
    torch.manual_seed(1)
    # maps pooled to L positions, and vectors as a single position
    return [torch.randn(batch, positions if c > 4 else 1, c) for c in IN_CHANNELS]


def one_hot_on(supernet: Supernet, genotype: Genotype) -> None:
    """Set the supernet's logits so that softmax is exactly one-hot on the genotype."""
    steps = supernet.space.steps
    prims = supernet.space.primitives
    with torch.no_grad():
        for k, cell in enumerate(genotype.cells):
            logits = supernet.cell_input_logits[k]
            logits.fill_(float("-inf"))
            for slot, node in enumerate(cell.inputs):
                logits[slot, node] = 0.0
            for j, step in enumerate(cell.steps):
                step_logits = supernet.step_input_logits[k * steps + j]
                step_logits.fill_(float("-inf"))
                for slot, node in enumerate(step.inputs):
                    step_logits[slot, node] = 0.0
                supernet.step_op_logits[k][j].fill_(float("-inf"))
                supernet.step_op_logits[k][j, prims.index(step.primitive)] = 0.0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("steps", [1, 2])
def test_one_hot_supernet_equals_fixed_network(seed, steps):
    space = SpaceConfig(cells=3, steps=steps, channels=8, positions=4, primitives=PRIMITIVES, cell_multiplier=2, dropout=0.0)
    genotype = random_genotype(NAMES, cells=3, steps=steps, primitives=PRIMITIVES, cell_multiplier=2, rng=random.Random(seed))
    torch.manual_seed(seed)
    supernet = Supernet(IN_CHANNELS, NAMES, space)
    # train-mode batch norm on a few steps, so that running statistics are not the defaults
    supernet(levels())
    one_hot_on(supernet, genotype)
    fixed = FixedNet(IN_CHANNELS, genotype, space)
    fixed.load_from_supernet(supernet)
    assert supernet.genotype() == genotype
    x = levels()
    supernet.eval(), fixed.eval()
    torch.testing.assert_close(supernet(x), fixed(x), rtol=1e-5, atol=1e-6)
    supernet.train(), fixed.train()
    torch.testing.assert_close(supernet(x), fixed(x), rtol=1e-5, atol=1e-6)


def test_fixed_network_uses_only_the_chosen_nodes_and_primitives():
    space = SpaceConfig(cells=2, steps=1, channels=8, positions=4, cell_multiplier=2)
    genotype = random_genotype(NAMES, cells=2, steps=1, primitives=space.primitives, cell_multiplier=2, rng=random.Random(3))
    fixed = FixedNet(IN_CHANNELS, genotype, space)
    used = {i for cell in genotype.cells for i in cell.inputs if i < len(NAMES)}
    assert fixed.used_nodes == sorted(used)
    chosen = {step.primitive for cell in genotype.cells for step in cell.steps}
    built = {name for cell in fixed.cells for step in cell.steps for name in step.ops}
    assert built == chosen
    assert fixed(levels()).shape == (4, 2 * 8 * 4)


def test_arch_parameters_are_apart_from_weights_and_shaped_per_choice():
    space = SpaceConfig(cells=2, steps=2, channels=8, positions=4)
    supernet = Supernet(IN_CHANNELS, NAMES, space)
    arch = supernet.arch_parameters()
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in supernet.weight_parameters())
    assert len(arch) + len(supernet.weight_parameters()) == len(list(supernet.parameters()))
    assert [tuple(p.shape) for p in supernet.cell_input_logits] == [(2, 5), (2, 6)]
    assert [tuple(p.shape) for p in supernet.step_input_logits] == [(2, 2), (2, 3)] * 2
    assert [tuple(p.shape) for p in supernet.step_op_logits] == [(2, 5)] * 2
    weights = supernet.arch_weights()
    assert all(abs(sum(slot) - 1) < 1e-6 for cell in weights.cell_input for slot in cell)


def test_architecture_gradients_reach_every_choice():
    space = SpaceConfig(cells=2, steps=2, channels=8, positions=4, dropout=0.0)
    supernet = Supernet(IN_CHANNELS, NAMES, space)
    (supernet(levels()) ** 2).mean().backward()
    for p in supernet.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_gumbel_relaxation_runs_one_primitive_per_step_and_still_moves_every_choice():
    space = SpaceConfig(cells=2, steps=1, channels=8, positions=4, dropout=0.0)
    supernet = Supernet(IN_CHANNELS, NAMES, space, relaxation="gumbel")
    supernet.tau = 1.0
    calls = []
    for cell in supernet.cells:
        for step in cell.steps:
            for name, op in step.ops.items():
                op.register_forward_hook(lambda module, args, out, name=name: calls.append(name))
    supernet.train()
    supernet.draw(torch.Generator().manual_seed(0))
    (supernet(levels()) ** 2).mean().backward()
    assert len(calls) <= space.cells  # one sampled primitive per step (none when it drew `zero`)
    for p in supernet.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_gumbel_projects_only_the_input_nodes_some_slot_sampled():
    """A slot reads its one sampled input: nodes no slot drew are never projected, and get no gradient."""
    space = SpaceConfig(cells=2, steps=1, channels=8, positions=4, dropout=0.0)
    projected_somewhere_else = 0
    for seed in range(8):
        supernet = Supernet(IN_CHANNELS, NAMES, space, relaxation="gumbel").train()
        projected = []
        for index, node in supernet.stem.nodes.items():
            node.register_forward_hook(lambda module, args, out, index=int(index): projected.append(index))
        supernet.draw(torch.Generator().manual_seed(seed))
        sampled = {int(c) for k, logits in enumerate(supernet.cell_input_logits)
                   for c in (logits.detach() + supernet._noise[f"cell_input{k}"]).argmax(dim=-1) if c < len(NAMES)}
        (supernet(levels()) ** 2).mean().backward()
        assert sorted(projected) == sorted(sampled)
        for index, node in supernet.stem.nodes.items():
            assert (node.linear.weight.grad is not None) == (int(index) in sampled)
        # every choice is in the graph (a draw of `zero` or an unread slot gives its logits a zero gradient)
        assert all(p.grad is not None for p in supernet.arch_parameters())
        projected_somewhere_else += len(sampled) < len(NAMES)
    assert projected_somewhere_else  # some draws leave nodes out (else this test shows nothing)


def test_gumbel_draws_repeat_with_the_generator_and_evaluation_uses_the_softmax():
    space = SpaceConfig(cells=2, steps=1, channels=8, positions=4, dropout=0.0)
    supernet = Supernet(IN_CHANNELS, NAMES, space, relaxation="gumbel").train()

    def output(seed):
        supernet.draw(torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return supernet(levels())

    assert torch.equal(output(3), output(3)) and not torch.equal(output(3), output(4))
    softmax = Supernet(IN_CHANNELS, NAMES, space)
    softmax.load_state_dict(supernet.state_dict())
    supernet.eval()
    softmax.eval()
    with torch.no_grad():
        assert torch.allclose(supernet(levels()), softmax(levels()))
