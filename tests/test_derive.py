import math

import pytest

from ssnas.errors import GenotypeError
from ssnas.nas.derive import ArchWeightRecord, ArchWeights, derive
from ssnas.nas.genotype import CellGene, Genotype, StepGene

NAMES = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")
PRIMS = ("zero", "sum", "attention", "linear_glu", "concat_fc")


def one_hot(n: int, i: int, high: float = 0.6) -> list[float]:
    low = (1 - high) / (n - 1)
    return [high if k == i else low for k in range(n)]


def uniform(n: int) -> list[float]:
    return [1 / n] * n


def mmimdb_weights() -> ArchWeights:
    """Weights whose derivation is BM-NAS's MM-IMDB genotype."""
    return ArchWeights(
        input_names=NAMES,
        primitives=PRIMS,
        cell_input=[[one_hot(6, 2), one_hot(6, 4)], [one_hot(7, 4), one_hot(7, 6)]],
        step_input=[[[one_hot(2, 1), one_hot(2, 0)]], [[one_hot(2, 0), one_hot(2, 1)]]],
        step_op=[[one_hot(5, 4)], [one_hot(5, 3)]],
        cell_multiplier=2,
    )


def test_derive_mmimdb():
    assert derive(mmimdb_weights()) == Genotype(
        NAMES,
        (
            CellGene((2, 4), (StepGene((1, 0), "concat_fc"),), (2,)),
            CellGene((4, 6), (StepGene((0, 1), "linear_glu"),), (2,)),
        ),
        (6, 7),
    )


def test_nested_lists_become_float_tuples():
    w = mmimdb_weights()
    assert isinstance(w.cell_input[0][1], tuple) and isinstance(w.step_op[1][0][0], float)
    assert w.num_cells == 2


def test_inputs_must_differ():
    # Both slots prefer node 3; the best distinct pair takes the runner-up in one slot.
    slot0 = [0.1, 0.1, 0.1, 0.5, 0.1, 0.1]
    slot1 = [0.1, 0.1, 0.3, 0.4, 0.05, 0.05]
    w = ArchWeights(NAMES, PRIMS, [[slot0, slot1]], [[[one_hot(2, 0), one_hot(2, 0)]]], [[one_hot(5, 1)]], 1)
    g = derive(w)
    assert g.cells[0].inputs == (3, 2)  # 0.5 * 0.3 beats 0.1 * 0.4
    assert g.cells[0].steps[0].inputs == (0, 1)  # step slots both prefer 0: (0, 1) beats (1, 0)


def test_zero_is_never_chosen():
    ops = [0.9, 0.01, 0.05, 0.02, 0.02]
    w = ArchWeights(NAMES, PRIMS, [[one_hot(6, 0), one_hot(6, 1)]], [[[one_hot(2, 0), one_hot(2, 1)]]], [[ops]], 1)
    assert derive(w).cells[0].steps[0].primitive == "attention"


def test_ties_break_to_lower_indices():
    w = ArchWeights(
        NAMES, PRIMS, [[uniform(6), uniform(6)]], [[[uniform(2), uniform(2)], [uniform(3), uniform(3)]]],
        [[uniform(5), uniform(5)]], 1,
    )
    g = derive(w)
    assert g.cells[0].inputs == (0, 1)
    assert [s.inputs for s in g.cells[0].steps] == [(0, 1), (0, 1)]
    assert [s.primitive for s in g.cells[0].steps] == ["sum", "sum"]
    assert g.cells[0].concat == (2, 3)


def test_head_reads_the_last_cell_multiplier_cells():
    cells = 3
    w = ArchWeights(
        NAMES, PRIMS,
        [[uniform(6 + k), uniform(6 + k)] for k in range(cells)],
        [[[uniform(2), uniform(2)]] for _ in range(cells)],
        [[uniform(5)] for _ in range(cells)],
        2,
    )
    assert derive(w).concat == (7, 8)


def test_records_count_kinds_and_names():
    w = mmimdb_weights()
    rows = w.records()
    # cell 0: 2*6 inputs + 2*2 step inputs + 5 ops; cell 1: 2*7 + 2*2 + 5.
    assert len(rows) == (12 + 4 + 5) + (14 + 4 + 5)
    assert {r.kind for r in rows} == {"cell_input", "step_input", "step_op"}
    assert rows[0] == ArchWeightRecord("cell_input", 0, None, 0, "image[0]", pytest.approx(0.08))
    cell1 = [r for r in rows if r.kind == "cell_input" and r.cell == 1 and r.slot == 1]
    assert [r.choice for r in cell1] == [*NAMES, "cell0"]
    assert cell1[-1].weight == pytest.approx(0.6)
    steps = [r for r in rows if r.kind == "step_input"]
    assert {r.choice for r in steps} == {"in0", "in1"} and all(r.step == 0 for r in steps)
    ops = [r for r in rows if r.kind == "step_op" and r.cell == 0]
    assert [r.choice for r in ops] == list(PRIMS) and all(r.slot is None for r in ops)
    assert math.isclose(sum(r.weight for r in ops), 1.0)


def test_records_name_earlier_steps():
    w = ArchWeights(
        NAMES, PRIMS, [[uniform(6), uniform(6)]], [[[uniform(2), uniform(2)], [uniform(3), uniform(3)]]],
        [[uniform(5), uniform(5)]], 1,
    )
    second = [r.choice for r in w.records() if r.kind == "step_input" and r.step == 1 and r.slot == 0]
    assert second == ["in0", "in1", "step0"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(cell_input=[[uniform(5), uniform(6)], [uniform(7), uniform(7)]]),
         "cell_input[0][0]: 5 weights, expected 6"),
        (dict(cell_input=[[uniform(6)], [uniform(7), uniform(7)]]), "cell_input[0]: expected two input slots"),
        (dict(step_input=[[[uniform(2), uniform(2)]]]), "step_input: 1 cells, but cell_input has 2"),
        (dict(step_input=[[[uniform(2), uniform(3)]], [[uniform(2), uniform(2)]]]),
         "step_input[0][0][1]: 3 weights, expected 2"),
        (dict(step_op=[[uniform(4)], [uniform(5)]]), "step_op[0][0]: 4 weights, expected 5"),
        (dict(step_op=[[uniform(5), uniform(5)], [uniform(5)]]), "step_input[0]: 1 steps but step_op[0] has 2"),
        (dict(step_op=[[[float("nan")] * 5], [uniform(5)]]), "step_op[0][0][0]: nan is not a finite weight"),
        (dict(cell_multiplier=3), "cell_multiplier: 3 is not in 1..2"),
        (dict(primitives=("zero", "conv", "sum", "attention", "linear_glu")), "primitives: 'conv' is not a primitive"),
        (dict(primitives=("zero",) * 5), "primitives: need a non-zero primitive"),
        (dict(input_names=("a",)), "input_names: need at least two"),
    ],
)
def test_shape_errors_name_the_field(change, message):
    fields = dict(
        input_names=NAMES, primitives=PRIMS,
        cell_input=mmimdb_weights().cell_input, step_input=mmimdb_weights().step_input,
        step_op=mmimdb_weights().step_op, cell_multiplier=2,
    )
    fields.update(change)
    with pytest.raises(GenotypeError) as err:
        ArchWeights(**fields)
    assert message in str(err.value)
