"""How sure a search is of each choice (ssnas.nas.certainty): entropy, margin, top ratio, verdict."""

import math

import pytest

from ssnas.nas.certainty import (DECIDED_RATIO, SearchCertainty, certainty_of, choice_certainties,
                                 search_certainty, summarize)
from ssnas.nas.derive import ArchWeights

INPUTS = ("image[0]", "image[1]", "text[0]")
PRIMS = ("zero", "sum", "attention", "concat_fc")


def peaked(n, best, top):
    return [top if i == best else (1 - top) / (n - 1) for i in range(n)]


def weights(cell0_x=(0, 1 / 3), op1=(1, 0.25)):
    """Two cells, one step each; cell0's slot x and cell1's primitive as (favourite, its weight)."""
    return ArchWeights(
        input_names=INPUTS, primitives=PRIMS,
        cell_input=((peaked(3, *cell0_x), peaked(3, 2, 0.8)), (peaked(4, 3, 0.7), peaked(4, 2, 0.7))),
        step_input=(((peaked(2, 0, 0.5), peaked(2, 1, 0.5)),), ((peaked(2, 0, 0.55), peaked(2, 1, 0.9)),)),
        step_op=((peaked(4, 3, 0.7),), (peaked(4, *op1),)),
        cell_multiplier=2,
    )


def as_rows(w: ArchWeights):
    """The records as the registry's arch_weights table returns them (step_index, extra columns)."""
    return [{"run_id": "r", "step": 10, "epoch": 0, "kind": r.kind, "cell": r.cell, "step_index": r.step,
             "slot": r.slot, "choice": r.choice, "weight": r.weight} for r in w.records()]


def test_uniform_weights_have_entropy_one_and_are_undecided():
    c = certainty_of(["a", "b", "c", "d"], [0.25] * 4, "step_op", 0, 0, None)
    assert c.entropy == pytest.approx(1.0)
    assert c.margin == pytest.approx(0.0) and c.top_ratio == pytest.approx(1.0)
    assert c.judged and not c.decided


def test_a_peaked_distribution_is_decided_with_its_margin_and_ratio():
    c = certainty_of(["a", "b", "c", "d"], [0.1, 0.7, 0.1, 0.1], "cell_input", 1, None, 0)
    assert c.top == "b"
    assert c.margin == pytest.approx(0.6)
    assert c.top_ratio == pytest.approx(2.8)
    expected = -(0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1)) / math.log(4)
    assert c.entropy == pytest.approx(expected) and 0 < c.entropy < 1
    assert c.decided and c.label == "cells[1].inputs[0]"


def test_the_threshold_is_on_the_top_ratio():
    at = certainty_of(["a", "b"], [0.75, 0.25], "step_op", 0, 0, None)  # 0.75 * 2 = 1.5x uniform
    below = certainty_of(["a", "b"], [0.74, 0.26], "step_op", 0, 0, None)
    assert at.top_ratio == pytest.approx(DECIDED_RATIO) and at.decided
    assert not below.decided


def test_one_candidate_and_unnormalized_weights():
    assert certainty_of(["a"], [1.0], "step_op", 0, 0, None).entropy == 0.0
    c = certainty_of(["a", "b"], [3.0, 1.0], "step_op", 0, 0, None)  # as probabilities: 0.75, 0.25
    assert c.margin == pytest.approx(0.5) and c.top_ratio == pytest.approx(1.5)


def test_registry_rows_and_records_give_the_same_certainties():
    w = weights()
    from_records = choice_certainties(w.records())
    assert choice_certainties(as_rows(w)) == from_records
    assert [c.label for c in from_records] == [
        "cells[0].inputs[0]", "cells[0].inputs[1]", "cells[0].steps[0].inputs[0]", "cells[0].steps[0].inputs[1]",
        "cells[0].steps[0].primitive", "cells[1].inputs[0]", "cells[1].inputs[1]", "cells[1].steps[0].inputs[0]",
        "cells[1].steps[0].inputs[1]", "cells[1].steps[0].primitive"]
    assert summarize(choice_certainties(as_rows(w))) == search_certainty(w)


def test_summary_judges_cell_inputs_and_primitives_not_step_inputs():
    w = weights()  # cell0 slot x uniform, cell1's primitive uniform, cell0's step inputs uniform
    summary = search_certainty(w)
    assert summary.undecided == ("cells[0].inputs[0]", "cells[1].steps[0].primitive")
    assert not summary.decided
    assert summary.min_top_ratio == pytest.approx(1.0) and summary.min_margin == pytest.approx(0.0)
    judged = [c for c in choice_certainties(w.records()) if c.judged]
    assert len(judged) == 6
    assert summary.mean_entropy == pytest.approx(sum(c.entropy for c in judged) / 6)
    assert summary.as_metrics() == {"arch_entropy": summary.mean_entropy, "arch_margin": summary.min_margin,
                                    "arch_top_ratio": summary.min_top_ratio}


def test_the_verdict_names_the_undecided_choices():
    undecided = search_certainty(weights())
    text = undecided.verdict("epoch 3")
    assert text.startswith("epoch 3: undecided: 2 choice(s)")
    assert "cells[0].inputs[0]" in text and "cells[1].steps[0].primitive" in text
    assert "cells[0].steps[0].inputs[0]" not in text  # step inputs are shown, not judged
    assert "\n" not in text

    decided = search_certainty(weights(cell0_x=(0, 0.8), op1=(1, 0.7)))
    assert decided.decided and decided.undecided == ()
    assert decided.verdict().startswith("search: decided:")
    assert f"lowest {decided.min_top_ratio:.2f}x" in decided.verdict()


def test_the_verdict_shortens_a_long_list():
    labels = tuple(f"cells[{i}].inputs[0]" for i in range(6))
    text = SearchCertainty(0.99, 0.01, 1.02, labels).verdict()
    assert "6 choice(s)" in text and "cells[3].inputs[0], ..." in text and "cells[4]" not in text


def test_nothing_judged_summarizes_to_zeros():
    only_step_inputs = [c for c in choice_certainties(weights().records()) if not c.judged]
    assert summarize(only_step_inputs) == summarize([]) == SearchCertainty(0.0, 0.0, 0.0, ())
