import dataclasses
import json
import random
import subprocess
import sys

import pytest

from ssnas.baselines import baseline_names, load_baseline
from ssnas.errors import GenotypeError
from ssnas.nas.genotype import (
    CellGene,
    Genotype,
    StepGene,
    diff,
    parse_bmnas,
    random_genotype,
)
from ssnas.nas.vocabulary import DEFAULT_PRIMITIVES, PRIMITIVES

MMIMDB_NAMES = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")
BMNAS_TEXT = (
    "Genotype(edges=[('skip', 2), ('skip', 4), ('skip', 4), ('skip', 6)], "
    "steps=[StepGenotype(inner_edges=[('skip', 1), ('skip', 0)], inner_steps=['cat_conv_relu'], "
    "inner_concat=[2]), StepGenotype(inner_edges=[('skip', 0), ('skip', 1)], "
    "inner_steps=['cat_conv_glu'], inner_concat=[2])], concat=[6, 7])"
)


def mmimdb() -> Genotype:
    return Genotype(
        MMIMDB_NAMES,
        (
            CellGene((2, 4), (StepGene((1, 0), "concat_fc"),), (2,)),
            CellGene((4, 6), (StepGene((0, 1), "linear_glu"),), (2,)),
        ),
        (6, 7),
    )


def with_cell(g: Genotype, k: int, **changes) -> Genotype:
    cells = list(g.cells)
    cells[k] = dataclasses.replace(cells[k], **changes)
    return dataclasses.replace(g, cells=tuple(cells))


# ---- construction, naming


def test_lists_are_coerced_to_tuples_and_hashable():
    g = Genotype(list(MMIMDB_NAMES), [CellGene([2, 4], [StepGene([1, 0], "sum")], [2])], [6])
    assert g.input_names == MMIMDB_NAMES
    assert g.cells[0].inputs == (2, 4) and g.cells[0].steps[0].inputs == (1, 0)
    assert isinstance(g.concat, tuple)
    assert len({g, dataclasses.replace(g)}) == 1


def test_node_names():
    g = mmimdb()
    assert g.num_inputs == 6
    assert g.node_name(2) == "image[2]" and g.node_name(6) == "cell0" and g.node_name(7) == "cell1"
    assert g.node_names[-2:] == ("cell0", "cell1")
    with pytest.raises(IndexError):
        g.node_name(8)


def test_describe():
    assert mmimdb().describe().splitlines() == [
        "cell0 = concat_fc(text[0], image[2])",
        "cell1 = linear_glu(text[0], cell0)",
        "head = concat(cell0, cell1)",
    ]


def test_name_and_source_do_not_affect_equality():
    g = mmimdb()
    labelled = dataclasses.replace(g, name="x", source="somewhere")
    assert labelled == g and hash(labelled) == hash(g)


# ---- validation


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Genotype(("a",), (CellGene((0, 0), (StepGene((0, 1), "sum"),), (2,)),), (1,)),
         "input_names: need at least two"),
        (lambda: Genotype(("a", "a"), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (2,)),
         "input_names[1]: 'a' is repeated"),
        (lambda: Genotype(("a", ""), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (2,)),
         "input_names[1]: expected a non-empty name"),
        (lambda: Genotype(("a", "b"), (), (2,)), "cells: a genotype needs at least one cell"),
        (lambda: Genotype(("a", "b"), (CellGene((0, 2), (StepGene((0, 1), "sum"),), (2,)),), (2,)),
         "cells[0].inputs[1]: 2 is not a node here (0..1)"),
        (lambda: Genotype(("a", "b"), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), ()),
         "concat: must name at least one cell node"),
        (lambda: Genotype(("a", "b"), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (1,)),
         "concat[0]: 1 is not a cell node (2..2)"),
        (lambda: Genotype(("a", "b"), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (3,)),
         "concat[0]: 3 is not a cell node (2..2)"),
        (lambda: Genotype(("a", "b"), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (2, 2)),
         "concat[1]: 2 is repeated"),
        (lambda: Genotype("ab", (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (2,)),
         "input_names: expected a list of names"),
        (lambda: CellGene((0, 1), (), (2,)), "steps: a cell needs at least one step"),
        (lambda: CellGene((0, 1), (StepGene((0, 2), "sum"),), (2,)), "steps[0].inputs[1]: 2 is not a node here (0..1)"),
        (lambda: CellGene((0, 1), (StepGene((0, 1), "sum"),), ()), "concat: must name at least one"),
        (lambda: CellGene((0, 1), (StepGene((0, 1), "sum"),), (1,)), "concat[0]: 1 is not a step output (2..2)"),
        (lambda: CellGene((0, 1), (StepGene((0, 1), "sum"),), (3,)), "concat[0]: 3 is not a step output (2..2)"),
        (lambda: CellGene((0, 1, 2), (StepGene((0, 1), "sum"),), (2,)), "inputs: expected two node indices, got 3"),
        (lambda: StepGene((0, 1), "conv"), "primitive: 'conv' is not a primitive (known: zero, sum,"),
        (lambda: StepGene((0, -1), "sum"), "inputs[1]: -1 is not a node index"),
        (lambda: StepGene((0, True), "sum"), "inputs[1]: expected an integer node index, got True"),
        (lambda: StepGene((0, 1.0), "sum"), "inputs[1]: expected an integer node index, got 1.0"),
    ],
)
def test_validation_errors_name_the_field(build, message):
    with pytest.raises(GenotypeError) as err:
        build()
    assert message in str(err.value)


# ---- JSON


def test_json_round_trip_is_byte_identical(tmp_path):
    g = dataclasses.replace(mmimdb(), name="n", source="s")
    text = g.to_json()
    assert text.endswith("}\n") and '\n  "cells": [' in text
    assert list(json.loads(text)) == sorted(json.loads(text))
    again = Genotype.from_json(text)
    assert again == g and (again.name, again.source) == ("n", "s")
    assert again.to_json() == text
    path = tmp_path / "g.json"
    g.save(path)
    assert path.read_text() == text
    assert Genotype.load(path).to_json() == text


def test_json_omits_unset_name_and_source():
    assert set(mmimdb().to_dict()) == {"input_names", "cells", "concat"}


def bad_dict(edit):
    data = mmimdb().to_dict()
    edit(data)
    return data


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("cells"), "bad.json: missing key 'cells'"),
        (lambda d: d.update(extra=1), "bad.json: unknown key 'extra'"),
        (lambda d: d.update(cells=5), "bad.json: cells: expected a list, got 5"),
        (lambda d: d["cells"][1].pop("steps"), "bad.json: cells[1]: missing key 'steps'"),
        (lambda d: d["cells"][1]["steps"][0].update(inputs=[0, 5]),
         "bad.json: cells[1].steps[0].inputs[1]: 5 is not a node here (0..1)"),
        (lambda d: d["cells"][0]["steps"][0].update(primitive="conv"),
         "bad.json: cells[0].steps[0].primitive: 'conv' is not a primitive"),
        (lambda d: d["cells"][0]["steps"][0].update(inputs="01"),
         "bad.json: cells[0].steps[0].inputs: expected a pair of node indices, got '01'"),
        (lambda d: d["cells"][1].update(inputs=[4, 7]), "bad.json: cells[1].inputs[1]: 7 is not a node here (0..6)"),
        (lambda d: d.update(name=3), "bad.json: name: expected text, got 3"),
    ],
)
def test_from_dict_errors_name_file_and_field(edit, message):
    with pytest.raises(GenotypeError) as err:
        Genotype.from_dict(bad_dict(edit), where="bad.json")
    assert message in str(err.value)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match=r"bad\.json: not valid JSON \(line 1 column 2"):
        Genotype.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(GenotypeError, match=r"bad\.json: expected an object"):
        Genotype.load(bad)
    with pytest.raises(GenotypeError, match=r"missing\.json: cannot read"):
        Genotype.load(tmp_path / "missing.json")


# ---- BM-NAS printed form


def test_parse_bmnas_mmimdb():
    assert parse_bmnas(BMNAS_TEXT, MMIMDB_NAMES) == mmimdb()


def test_parse_bmnas_infers_input_count():
    g = parse_bmnas(BMNAS_TEXT)
    assert g.input_names == ("in0", "in1", "in2", "in3", "in4", "in5")
    assert g.cells == mmimdb().cells and g.concat == (6, 7)


def test_parse_bmnas_class_name_spellings_and_multi_step_cells():
    text = """
    Genotype(edges=[('skip', 0), ('skip', 3), ('skip', 8), ('skip', 1)],
             steps=[StepGenotype(inner_edges=[('skip', 0), ('skip', 1), ('skip', 2), ('skip', 0)],
                                 inner_steps=['ScaleDotAttn', 'Sum'], inner_concat=[2, 3]),
                    StepGenotype(inner_edges=[('skip', 1), ('skip', 0)],
                                 inner_steps=['LinearGLU'], inner_concat=[2])],
             concat=[8, 9])
    """
    g = parse_bmnas(text)
    assert g.num_inputs == 8
    assert g.cells[0] == CellGene(
        (0, 3), (StepGene((0, 1), "attention"), StepGene((2, 0), "sum")), (2, 3)
    )
    assert g.cells[1] == CellGene((8, 1), (StepGene((1, 0), "linear_glu"),), (2,))
    spelled = BMNAS_TEXT.replace("cat_conv_relu", "ConcatFC").replace("cat_conv_glu", "LinearGLU")
    assert parse_bmnas(spelled, MMIMDB_NAMES) == mmimdb()


def test_parse_bmnas_positional_fields_and_range_concat():
    text = ("Genotype([('skip', 0), ('skip', 1)], [StepGenotype([('skip', 0), ('skip', 1)], "
            "['scale_dot_attn'], range(2, 3))], range(2, 3))")
    g = parse_bmnas(text, ("a", "b"))
    assert g.cells == (CellGene((0, 1), (StepGene((0, 1), "attention"),), (2,)),) and g.concat == (2,)


@pytest.mark.parametrize(
    "text, message",
    [
        (BMNAS_TEXT.replace("cat_conv_glu", "conv5x5"),
         "steps[1].inner_steps[0]: unknown BM-NAS op 'conv5x5' (known: zero,"),
        ("Genotype(edges=[", "not a Python expression"),
        ("Cell(edges=[], steps=[], concat=[])", "expected Genotype(edges=..., steps=..., concat=...)"),
        ("Genotype(edges=[], steps=[])", "expected Genotype(edges=..., steps=..., concat=...)"),
        ("Genotype(edges=[], steps=[], concat=[], normal=[])", "unexpected argument 'normal'"),
        (BMNAS_TEXT.replace("('skip', 6)", "('none', 6)"), "edges[3]: edge op 'none' is not supported"),
        (BMNAS_TEXT.replace("('skip', 6)", "6"), "edges[3]: expected ('skip', node index), got 6"),
        (BMNAS_TEXT.replace("('skip', 4), ('skip', 6)", "('skip', 4)"), "edges: 3 edges for 2 cells"),
        (BMNAS_TEXT.replace("inner_edges=[('skip', 0), ('skip', 1)]", "inner_edges=[('skip', 0)]"),
         "steps[1].inner_edges: 1 edges for 1 inner steps"),
        (BMNAS_TEXT.replace("concat=[6, 7]", "concat=f(x)"), "concat: expected a list of node indices"),
        (BMNAS_TEXT.replace("concat=[6, 7]", "concat=[1]"), "cannot infer the input nodes"),
        (BMNAS_TEXT.replace("('skip', 6)", "('skip', 7)"), "cells[1].inputs[1]: 7 is not a node here (0..6)"),
        (BMNAS_TEXT.replace("[StepGenotype(", "[Foo("), "steps[0]: expected StepGenotype(inner_edges=..."),
        ("__import__('os').system('true')", "expected Genotype("),
    ],
)
def test_parse_bmnas_errors(text, message):
    with pytest.raises(GenotypeError) as err:
        parse_bmnas(text)
    assert str(err.value).startswith("BM-NAS genotype: ")
    assert message in str(err.value)


# ---- diff


def test_diff_identical():
    d = diff(mmimdb(), dataclasses.replace(mmimdb(), name="other"))
    assert d.similarity == 1.0 and d.differences == ()


def test_diff_ignores_pair_order():
    g = mmimdb()
    # Swap cell 0's inputs and its step's local inputs: the same architecture, spelled differently.
    swapped = with_cell(g, 0, inputs=(4, 2), steps=(StepGene((0, 1), "concat_fc"),))
    assert diff(g, swapped).similarity == 1.0


def test_diff_disjoint():
    a = Genotype(("x", "y", "z"), (CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)),), (3,))
    b = Genotype(
        ("p", "q", "r"),
        (CellGene((1, 2), (StepGene((0, 1), "attention"),), (2,)),
         CellGene((0, 3), (StepGene((1, 0), "sum"),), (2,))),
        (4,),
    )
    assert diff(a, b).similarity == 0.0


def test_diff_partial():
    g = mmimdb()
    one_op = with_cell(g, 1, steps=(StepGene((0, 1), "sum"),))
    d = diff(g, one_op)
    # 12 points: per cell 2 (inputs) + 2 (step inputs) + 1 (primitive), and 2 for the head.
    assert d.similarity == pytest.approx(11 / 12)
    assert [(x.path, x.a, x.b) for x in d.differences] == [("cells[1].steps[0].primitive", "linear_glu", "sum")]

    # cell 0 reads image[1] instead of image[2]: its inputs and its step's inputs each match 1 of 2.
    other_input = with_cell(g, 0, inputs=(1, 4))
    d = diff(g, other_input)
    assert d.similarity == pytest.approx(10 / 12)
    assert {x.path for x in d.differences} == {"cells[0].inputs", "cells[0].steps[0].inputs"}
    assert d.differences[0].a == "image[2], text[0]" and d.differences[0].b == "image[1], text[0]"


def test_diff_counts_missing_cells_and_steps_as_mismatches():
    g = mmimdb()
    one_cell = Genotype(MMIMDB_NAMES, g.cells[:1], (6,))
    d = diff(g, one_cell)
    # cell 1 (5 points) is missing in b; the head matches 1 of 2.
    assert d.similarity == pytest.approx(6 / 12)
    assert ("cells[1].steps[0].primitive", "linear_glu", "-") in [(x.path, x.a, x.b) for x in d.differences]

    two_steps = with_cell(g, 1, steps=g.cells[1].steps + (StepGene((2, 0), "sum"),))
    assert diff(g, two_steps).similarity == pytest.approx(12 / 15)


def test_diff_render():
    g = mmimdb()
    text = diff(g, with_cell(g, 1, steps=(StepGene((0, 1), "sum"),))).render("bmnas", "found")
    lines = text.splitlines()
    assert "bmnas" in lines[0] and "found" in lines[0]
    marked = [line for line in lines if line.startswith("*")]
    assert len(marked) == 1 and "cells[1].steps[0].primitive" in marked[0]
    assert "linear_glu" in marked[0] and "sum" in marked[0]
    assert any(line.startswith("  cells[0].inputs") and "image[2], text[0]" in line for line in lines)
    assert lines[-1] == "similarity 0.92"


# ---- random genotypes


def test_random_genotype_is_valid_over_many_seeds():
    names = MMIMDB_NAMES
    seen = set()
    for seed in range(300):
        g = random_genotype(names, 3, 2, DEFAULT_PRIMITIVES, 2, random.Random(seed))
        assert g.input_names == names and len(g.cells) == 3 and g.concat == (7, 8)
        for cell in g.cells:
            assert cell.inputs[0] != cell.inputs[1]
            assert cell.concat == (2, 3)
            for step in cell.steps:
                assert step.inputs[0] != step.inputs[1]
                assert step.primitive in DEFAULT_PRIMITIVES and step.primitive != "zero"
        assert Genotype.from_json(g.to_json()) == g
        seen.add(g)
    assert len(seen) > 250
    assert random_genotype(names, 3, 2, PRIMITIVES, 2, random.Random(1)) == random_genotype(
        names, 3, 2, PRIMITIVES, 2, random.Random(1)
    )


def test_random_genotype_rejects_impossible_shapes():
    with pytest.raises(GenotypeError, match="non-zero primitive"):
        random_genotype(MMIMDB_NAMES, 2, 1, ("zero",), 2, random.Random(0))
    with pytest.raises(GenotypeError, match="cell_multiplier: 3 is not in 1..2"):
        random_genotype(MMIMDB_NAMES, 2, 1, DEFAULT_PRIMITIVES, 3, random.Random(0))
    with pytest.raises(GenotypeError, match="at least one cell"):
        random_genotype(MMIMDB_NAMES, 0, 1, DEFAULT_PRIMITIVES, 1, random.Random(0))


# ---- baselines


def test_bundled_baseline_is_the_parsed_bmnas_genotype():
    g = load_baseline("bmnas-mmimdb")
    assert g == parse_bmnas(BMNAS_TEXT, MMIMDB_NAMES)
    assert g.name == "bmnas-mmimdb" and "Yin et al." in g.source and "Somedaywilldo/BM-NAS" in g.source
    assert "bmnas-mmimdb" in baseline_names()


def test_bundled_baselines_are_canonical():
    from importlib import resources

    for name in baseline_names():
        text = resources.files("ssnas.baselines").joinpath(f"{name}.json").read_text(encoding="utf-8")
        assert load_baseline(name).to_json() == text


def test_unknown_baseline_lists_known_ones():
    with pytest.raises(GenotypeError, match=r"unknown baseline 'darts' \(known: .*bmnas-mmimdb"):
        load_baseline("darts")


# ---- import cost


def test_genotype_modules_do_not_import_torch():
    code = (
        "import sys, ssnas.nas.genotype, ssnas.nas.derive, ssnas.baselines; "
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_genotype_whose_head_reads_only_zero_operations_is_refused():
    data = random_genotype(("a[0]", "a[1]", "b[0]"), 2, 2, ("sum",), 2, random.Random(0)).to_dict()
    data["cells"][0]["steps"][0]["primitive"] = "zero"  # one dead step: the others still read the inputs
    assert Genotype.from_dict(data).cells[0].steps[0].primitive == "zero"
    for cell in data["cells"]:
        for step in cell["steps"]:
            step["primitive"] = "zero"
    with pytest.raises(GenotypeError, match="cells: every path from the input nodes to the head goes through a zero"):
        Genotype.from_dict(data)
