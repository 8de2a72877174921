"""The genotype: one discrete fusion architecture as plain, hashable data (no torch).

A genotype is what a search produces and what pretraining and fine-tuning rebuild, so it must be
printable, diffable, saved as canonical JSON and validated where it enters, by commands that never
build a network. It also reads BM-NAS's printed form, so that published architectures can be
compared with ours.

Node indices. Global: 0..num_inputs-1 are the input nodes (feature levels, modality by modality),
num_inputs + k is the output of cell k. Cell-local: 0 and 1 are the cell's two inputs, 2 + j is the
output of step j.
"""

from __future__ import annotations

import ast
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ssnas.errors import GenotypeError
from ssnas.nas.vocabulary import BMNAS_OP_NAMES, known_primitives
from ssnas.nesting import MAX_DEPTH, too_deep

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Validation helpers. Messages read "<field path>: <problem>"; callers prefix outer paths.


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


def _fail(path: str, problem: str) -> GenotypeError:
    return GenotypeError(f"{path}: {problem}" if path else problem)


def _as_tuple(value: Any, path: str, what: str) -> tuple:
    """Lists from JSON become tuples, so that genotypes stay hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise _fail(path, f"expected {what}, got {value!r}")


def _check_index(value: Any, path: str, count: int | None) -> None:
    """An int in [0, count); only non-negative when count is None (not known yet)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"expected an integer node index, got {value!r}")
    if value < 0:
        raise _fail(path, f"{value!r} is not a node index (indices start at 0)")
    if count is not None and value >= count:
        raise _fail(path, f"{value!r} is not a node here (0..{count - 1})")


def _check_pair(pair: tuple, path: str, count: int | None) -> None:
    """Two node indices, each in [0, count) when count is known."""
    if len(pair) != 2:
        raise _fail(path, f"expected two node indices, got {len(pair)}: {list(pair)!r}")
    for i, node in enumerate(pair):
        _check_index(node, f"{path}[{i}]", count)


def _check_concat(concat: tuple, path: str, low: int, high: int, what: str) -> None:
    """A non-empty list of distinct indices in [low, high)."""
    if not concat:
        raise _fail(path, f"must name at least one {what}")
    for i, node in enumerate(concat):
        _check_index(node, f"{path}[{i}]", None)
        if not low <= node < high:
            raise _fail(f"{path}[{i}]", f"{node!r} is not a {what} ({low}..{high - 1})")
        if node in concat[:i]:
            raise _fail(f"{path}[{i}]", f"{node!r} is repeated")


def _nested(path: str, build: Callable[[], T]) -> T:
    """Run `build`, prefixing the path of any GenotypeError it raises with `path`."""
    try:
        return build()
    except GenotypeError as err:
        raise GenotypeError(_join(path, str(err))) from None


# --------------------------------------------------------------------------------------------
# The genotype


@dataclass(frozen=True)
class StepGene:
    """One step of a cell: fuse two cell-local nodes with a primitive."""

    inputs: tuple[int, int]  # cell-local node indices: 0, 1 = the cell's inputs, 2 + j = step j
    primitive: str  # a name from vocabulary.known_primitives()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _as_tuple(self.inputs, "inputs", "a pair of node indices"))
        _check_pair(self.inputs, "inputs", None)
        known = known_primitives()
        if self.primitive not in known:
            raise _fail("primitive", f"{self.primitive!r} is not a primitive (known: {', '.join(known)})")


@dataclass(frozen=True)
class CellGene:
    """One cell: two inputs chosen among earlier nodes, its steps, and which steps it outputs."""

    inputs: tuple[int, int]  # global node indices: input nodes, then cells before this one
    steps: tuple[StepGene, ...]
    concat: tuple[int, ...]  # cell-local indices (each >= 2) of the step outputs concatenated

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _as_tuple(self.inputs, "inputs", "a pair of node indices"))
        object.__setattr__(self, "steps", _as_tuple(self.steps, "steps", "a list of steps"))
        object.__setattr__(self, "concat", _as_tuple(self.concat, "concat", "a list of step nodes"))
        _check_pair(self.inputs, "inputs", None)
        if not self.steps:
            raise _fail("steps", "a cell needs at least one step")
        for j, step in enumerate(self.steps):
            if not isinstance(step, StepGene):
                raise _fail(f"steps[{j}]", f"expected a StepGene, got {step!r}")
            _check_pair(step.inputs, f"steps[{j}].inputs", 2 + j)
        _check_concat(self.concat, "concat", 2, 2 + len(self.steps), "step output")


@dataclass(frozen=True)
class Genotype:
    """A whole fusion network: named input nodes, cells in order, and the cells the head reads.

    `name` and `source` say where a bundled or imported genotype comes from; they travel with the
    JSON but take no part in equality, so a baseline equals the same architecture found by search.
    """

    input_names: tuple[str, ...]  # e.g. ("image[0]", ..., "text[1]"), modality by modality
    cells: tuple[CellGene, ...]
    concat: tuple[int, ...]  # global node indices of the cells the head concatenates
    name: str | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for attr, what in (("input_names", "a list of names"), ("cells", "a list of cells"),
                           ("concat", "a list of cell nodes")):
            object.__setattr__(self, attr, _as_tuple(getattr(self, attr), attr, what))
        self._check_input_names()
        n = len(self.input_names)
        if not self.cells:
            raise _fail("cells", "a genotype needs at least one cell")
        for k, cell in enumerate(self.cells):
            if not isinstance(cell, CellGene):
                raise _fail(f"cells[{k}]", f"expected a CellGene, got {cell!r}")
            _check_pair(cell.inputs, f"cells[{k}].inputs", n + k)
        _check_concat(self.concat, "concat", n, n + len(self.cells), "cell node")
        if not self._reads_its_inputs():
            raise _fail("cells", "every path from the input nodes to the head goes through a zero operation: "
                                 "the network's output would not depend on its input")
        for attr in ("name", "source"):
            value = getattr(self, attr)
            if value is not None and not isinstance(value, str):
                raise _fail(attr, f"expected text, got {value!r}")

    def _reads_its_inputs(self) -> bool:
        """Whether some input node reaches the head through non-zero operations (`zero` outputs nothing)."""
        live = [True] * self.num_inputs  # per global node: does it carry anything from the inputs?
        for cell in self.cells:
            local = [live[i] for i in cell.inputs]
            for step in cell.steps:
                local.append(step.primitive != "zero" and any(local[i] for i in step.inputs))
            live.append(any(local[i] for i in cell.concat))
        return any(live[i] for i in self.concat)

    def _check_input_names(self) -> None:
        if len(self.input_names) < 2:
            raise _fail("input_names", f"need at least two input nodes, got {list(self.input_names)!r}")
        for i, name in enumerate(self.input_names):
            if not isinstance(name, str) or not name:
                raise _fail(f"input_names[{i}]", f"expected a non-empty name, got {name!r}")
            if name in self.input_names[:i]:
                raise _fail(f"input_names[{i}]", f"{name!r} is repeated")

    # ---- naming

    @property
    def num_inputs(self) -> int:
        """Number of input nodes (feature levels of all modalities)."""
        return len(self.input_names)

    @property
    def node_names(self) -> tuple[str, ...]:
        """Names of all global nodes: the input names, then "cell0", "cell1", ..."""
        return self.input_names + tuple(f"cell{k}" for k in range(len(self.cells)))

    @property
    def used_input_names(self) -> tuple[str, ...]:
        """The input nodes its cells read, in node order: what a dataset must have to run it."""
        used = {i for cell in self.cells for i in cell.inputs if i < self.num_inputs}
        return tuple(name for i, name in enumerate(self.input_names) if i in used)

    def node_name(self, index: int) -> str:
        """Readable name of global node `index`, for listings and diffs."""
        names = self.node_names
        if not 0 <= index < len(names):
            raise IndexError(f"node {index} does not exist (0..{len(names) - 1})")
        return names[index]

    def describe(self) -> str:
        """One line per cell, e.g. `cell0 = concat_fc(image[2], text[0])`, then the head."""
        lines = []
        for k, cell in enumerate(self.cells):
            local = [self.node_name(i) for i in cell.inputs]
            local += [f"step{j}" for j in range(len(cell.steps))]
            calls = [f"{s.primitive}({', '.join(local[i] for i in s.inputs)})" for s in cell.steps]
            if cell.concat == (2,) and len(calls) == 1:
                lines.append(f"cell{k} = {calls[0]}")
                continue
            lines += [f"cell{k}.step{j} = {call}" for j, call in enumerate(calls)]
            lines.append(f"cell{k} = concat({', '.join(local[i] for i in cell.concat)})")
        lines.append(f"head = concat({', '.join(self.node_name(i) for i in self.concat)})")
        return "\n".join(lines)

    # ---- JSON

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; `name` and `source` only when set."""
        data: dict[str, Any] = {
            "input_names": list(self.input_names),
            "cells": [
                {
                    "inputs": list(cell.inputs),
                    "steps": [{"inputs": list(s.inputs), "primitive": s.primitive} for s in cell.steps],
                    "concat": list(cell.concat),
                }
                for cell in self.cells
            ],
            "concat": list(self.concat),
        }
        if self.name is not None:
            data["name"] = self.name
        if self.source is not None:
            data["source"] = self.source
        return data

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, 2-space indent, trailing newline): equal genotypes with the
        same name and source give identical bytes, so files diff and hash cleanly."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = "<dict>") -> Genotype:
        """Validate and build from `to_dict()` data; errors name `where` and the field."""
        return _with_where(where, lambda: _genotype_from_dict(data))

    @classmethod
    def from_json(cls, text: str, where: str = "<json>") -> Genotype:
        """Parse canonical (or any equivalent) JSON text."""
        try:
            data = json.loads(text)
            deep = too_deep(data)
        except json.JSONDecodeError as err:
            raise GenotypeError(
                f"{where}: not valid JSON (line {err.lineno} column {err.colno}: {err.msg})"
            ) from None
        except RecursionError:  # the parser's own limit, reached before ours
            deep = True
        if deep:
            raise GenotypeError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels)")
        return cls.from_dict(data, where=where)

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        """Read a genotype file; every problem becomes a GenotypeError naming the file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise GenotypeError(f"{path}: cannot read genotype ({err})") from None
        return cls.from_json(text, where=str(path))

    def save(self, path: str | Path) -> None:
        """Write canonical JSON to `path`."""
        Path(path).write_text(self.to_json(), encoding="utf-8")


def _with_where(where: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except GenotypeError as err:
        raise GenotypeError(f"{where}: {err}") from None


def _expect_object(data: Any, path: str, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    if not isinstance(data, Mapping):
        raise _fail(path, f"expected an object with keys {', '.join(required)}, got {data!r}")
    for key in required:
        if key not in data:
            raise _fail(path, f"missing key {key!r}")
    for key in data:
        if key not in required and key not in optional:
            known = ", ".join(sorted([*required, *optional]))
            raise _fail(path, f"unknown key {key!r} (expected: {known})")


def _expect_list(value: Any, path: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise _fail(path, f"expected a list, got {value!r}")
    return list(value)


def _genotype_from_dict(data: Any) -> Genotype:
    _expect_object(data, "", ("input_names", "cells", "concat"), ("name", "source"))
    cells: list[CellGene] = []
    for k, cell in enumerate(_expect_list(data["cells"], "cells")):
        path = f"cells[{k}]"
        _expect_object(cell, path, ("inputs", "steps", "concat"))
        steps: list[StepGene] = []
        for j, step in enumerate(_expect_list(cell["steps"], f"{path}.steps")):
            spath = f"{path}.steps[{j}]"
            _expect_object(step, spath, ("inputs", "primitive"))
            steps.append(_nested(spath, partial(StepGene, step["inputs"], step["primitive"])))
        cells.append(_nested(path, partial(CellGene, cell["inputs"], tuple(steps), cell["concat"])))
    return Genotype(
        input_names=data["input_names"],
        cells=tuple(cells),
        concat=data["concat"],
        name=data.get("name"),
        source=data.get("source"),
    )


# --------------------------------------------------------------------------------------------
# BM-NAS's printed form

_BMNAS_SHAPE = "Genotype(edges=[(op, node), ...], steps=[StepGenotype(...), ...], concat=[...])"


def parse_bmnas(
    text: str, input_names: Sequence[str] | None = None, where: str = "BM-NAS genotype"
) -> Genotype:
    """Read a genotype as BM-NAS prints it (a namedtuple repr), safely through `ast`.

    Edges come two per cell, inner edges two per inner step; both spellings of BM-NAS op names are
    read. Without `input_names`, the input-node count is inferred from the head, which always reads
    the last cell (BM-NAS concatenates its last cells), and the inputs are named in0, in1, ...
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise GenotypeError(f"{where}: not a Python expression ({err.msg}); expected {_BMNAS_SHAPE}") from None
    except (MemoryError, RecursionError):  # what CPython's parser raises for thousands of nested operators
        raise GenotypeError(f"{where}: nested too deeply; expected {_BMNAS_SHAPE}") from None
    return _with_where(where, lambda: _bmnas_genotype(tree.body, input_names))


def _bmnas_genotype(node: ast.expr, input_names: Sequence[str] | None) -> Genotype:
    args = _call_args(node, "Genotype", ("edges", "steps", "concat"), "")
    edges = _bmnas_edges(args["edges"], "edges")
    if not isinstance(args["steps"], (ast.List, ast.Tuple)):
        raise _fail("steps", f"expected a list of StepGenotype(...), got {_snippet(args['steps'])}")
    step_nodes = args["steps"].elts
    if len(edges) != 2 * len(step_nodes):
        raise _fail("edges", f"{len(edges)} edges for {len(step_nodes)} cells (expected two per cell)")
    concat = _bmnas_ints(args["concat"], "concat")
    cells: list[CellGene] = []
    for k, step_node in enumerate(step_nodes):
        steps, cell_concat = _bmnas_cell(step_node, f"steps[{k}]")
        pair = (edges[2 * k], edges[2 * k + 1])
        cells.append(_nested(f"cells[{k}]", partial(CellGene, pair, steps, cell_concat)))
    if input_names is None:
        num_inputs = (max(concat) + 1 - len(cells)) if concat else 0
        if num_inputs < 2:
            raise _fail("concat", f"cannot infer the input nodes from concat={concat!r} with {len(cells)} cells")
        input_names = [f"in{i}" for i in range(num_inputs)]
    return Genotype(tuple(input_names), tuple(cells), tuple(concat))


def _bmnas_cell(node: ast.expr, path: str) -> tuple[tuple[StepGene, ...], tuple[int, ...]]:
    args = _call_args(node, "StepGenotype", ("inner_edges", "inner_steps", "inner_concat"), path)
    edges = _bmnas_edges(args["inner_edges"], f"{path}.inner_edges")
    ops = _literal(args["inner_steps"], f"{path}.inner_steps", "a list of op names")
    if not isinstance(ops, (list, tuple)) or not all(isinstance(op, str) for op in ops):
        raise _fail(f"{path}.inner_steps", f"expected a list of op names, got {ops!r}")
    if len(edges) != 2 * len(ops):
        raise _fail(f"{path}.inner_edges", f"{len(edges)} edges for {len(ops)} inner steps (expected two per step)")
    steps = []
    for j, op in enumerate(ops):
        if op not in BMNAS_OP_NAMES:
            known = ", ".join(BMNAS_OP_NAMES)
            raise _fail(f"{path}.inner_steps[{j}]", f"unknown BM-NAS op {op!r} (known: {known})")
        steps.append(StepGene((edges[2 * j], edges[2 * j + 1]), BMNAS_OP_NAMES[op]))
    return tuple(steps), tuple(_bmnas_ints(args["inner_concat"], f"{path}.inner_concat"))


def _call_args(node: ast.expr, name: str, fields: Sequence[str], path: str) -> dict[str, ast.expr]:
    """The arguments of a namedtuple repr `name(field=..., ...)`, positional or by keyword."""
    shape = f"{name}({', '.join(f + '=...' for f in fields)})"
    func = node.func if isinstance(node, ast.Call) else None
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if not isinstance(node, ast.Call) or called != name:
        raise _fail(path, f"expected {shape}, got {_snippet(node)}")
    args = dict(zip(fields, node.args, strict=False))  # the rest may come by keyword; too many is caught below
    for kw in node.keywords:
        if kw.arg is None or kw.arg not in fields or kw.arg in args:  # None: a **mapping
            raise _fail(path, f"unexpected argument {kw.arg!r} in {name}(...); expected {shape}")
        args[kw.arg] = kw.value
    if len(node.args) > len(fields) or len(args) != len(fields):
        raise _fail(path, f"expected {shape}, got {_snippet(node)}")
    return args


def _literal(node: ast.expr, path: str, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise _fail(path, f"expected {what}, got {_snippet(node)}") from None


def _bmnas_ints(node: ast.expr, path: str) -> list[int]:
    """A literal list of node indices, or `range(a, b)` as DARTS-style code sometimes prints."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        bounds = [_literal(a, path, "integer range bounds") for a in node.args]
        if node.keywords or not 1 <= len(bounds) <= 2 or not all(type(b) is int for b in bounds):
            raise _fail(path, f"expected a list of node indices, got {_snippet(node)}")
        return list(range(*bounds))
    value = _literal(node, path, "a list of node indices")
    if not isinstance(value, (list, tuple)) or not all(type(v) is int for v in value):
        raise _fail(path, f"expected a list of node indices, got {value!r}")
    return list(value)


def _bmnas_edges(node: ast.expr, path: str) -> list[int]:
    """[('skip', i), ...] -> [i, ...]; a derived BM-NAS edge is always 'skip'."""
    value = _literal(node, path, "a list of ('skip', node) edges")
    if not isinstance(value, (list, tuple)):
        raise _fail(path, f"expected a list of ('skip', node) edges, got {value!r}")
    nodes = []
    for i, edge in enumerate(value):
        if not (isinstance(edge, (list, tuple)) and len(edge) == 2 and isinstance(edge[0], str)
                and type(edge[1]) is int):
            raise _fail(f"{path}[{i}]", f"expected ('skip', node index), got {edge!r}")
        if edge[0] != "skip":
            raise _fail(f"{path}[{i}]", f"edge op {edge[0]!r} is not supported (BM-NAS edges are 'skip')")
        nodes.append(edge[1])
    return nodes


def _snippet(node: ast.expr) -> str:
    text = ast.unparse(node)
    return repr(text if len(text) <= 60 else text[:57] + "...")


# --------------------------------------------------------------------------------------------
# Diff


@dataclass(frozen=True)
class Difference:
    """One choice on which two genotypes disagree, rendered with node names ("-" = absent)."""

    path: str  # e.g. "cells[0].inputs", "cells[1].steps[0].primitive", "concat"
    a: str
    b: str


@dataclass(frozen=True)
class ComparedChoice:
    """One architectural choice in both genotypes and how much of it matches."""

    path: str
    a: str
    b: str
    matched: int
    out_of: int

    @property
    def differs(self) -> bool:
        return self.matched < self.out_of


@dataclass(frozen=True)
class GenotypeDiff:
    """Every compared choice of two genotypes, the disagreements, and a similarity score."""

    choices: tuple[ComparedChoice, ...]

    @property
    def similarity(self) -> float:
        """Matched choices / all choices, in [0, 1]: 1.0 for the same architecture."""
        total = sum(c.out_of for c in self.choices)
        return sum(c.matched for c in self.choices) / total if total else 1.0

    @property
    def differences(self) -> tuple[Difference, ...]:
        return tuple(Difference(c.path, c.a, c.b) for c in self.choices if c.differs)

    def render(self, a_label: str = "a", b_label: str = "b") -> str:
        """A side-by-side listing, differing choices marked with `*`, then the similarity."""
        rows = [(" ", "choice", a_label, b_label)]
        rows += [("*" if c.differs else " ", c.path, c.a, c.b) for c in self.choices]
        w_path = max(len(r[1]) for r in rows)
        w_a = max(len(r[2]) for r in rows)
        lines = [f"{m} {p:<{w_path}}  {a:<{w_a}}  {b}".rstrip() for m, p, a, b in rows]
        lines.append(f"similarity {self.similarity:.2f}")
        return "\n".join(lines)


_ABSENT = "-"


def _resolved(genotype: Genotype) -> list[tuple[tuple[str, ...], list[tuple[tuple[str, ...], str]]]]:
    """Per cell: its input names, and per step its input names (resolved to global names) and
    primitive. Resolving step inputs makes genotypes comparable even when cell inputs are listed
    in another order."""
    out = []
    for k, cell in enumerate(genotype.cells):
        local = [genotype.node_name(i) for i in cell.inputs]
        local += [f"cell{k}.step{j}" for j in range(len(cell.steps))]
        steps = [(tuple(local[i] for i in s.inputs), s.primitive) for s in cell.steps]
        out.append((tuple(local[:2]), steps))
    return out


def _compare_sets(path: str, a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> ComparedChoice:
    """Overlap of two name lists as multisets, out of the longer; absent on one side = no match."""
    matched = sum((Counter(a) & Counter(b)).values()) if a is not None and b is not None else 0
    return ComparedChoice(path, _show(a), _show(b), matched, max(len(a or ()), len(b or ())))


def _at(items: Sequence[T], index: int) -> T | None:
    return items[index] if index < len(items) else None


def _show(names: tuple[str, ...] | str | None) -> str:
    if names is None:
        return _ABSENT
    return names if isinstance(names, str) else ", ".join(names)


def diff(a: Genotype, b: Genotype) -> GenotypeDiff:
    """Compare two genotypes choice by choice, by node names.

    Choices: each cell's input pair (as a set, 2 points), each step's resolved input pair (as a
    set, 2 points) and primitive (1 point), and the head's concatenated cells (as a set). Cells or
    steps present in only one genotype count as mismatches. Cell concat lists are not compared: in
    this search space a cell always concatenates all its steps.
    """
    ra, rb = _resolved(a), _resolved(b)
    choices = []
    for k in range(max(len(ra), len(rb))):
        ca, cb = _at(ra, k), _at(rb, k)
        choices.append(_compare_sets(f"cells[{k}].inputs", ca and ca[0], cb and cb[0]))
        steps_a, steps_b = ca[1] if ca else [], cb[1] if cb else []
        for j in range(max(len(steps_a), len(steps_b))):
            sa, sb = _at(steps_a, j), _at(steps_b, j)
            path = f"cells[{k}].steps[{j}]"
            choices.append(_compare_sets(f"{path}.inputs", sa and sa[0], sb and sb[0]))
            pa, pb = sa and sa[1], sb and sb[1]
            same = int(pa is not None and pa == pb)
            choices.append(ComparedChoice(f"{path}.primitive", _show(pa), _show(pb), same, 1))
    head_a = tuple(a.node_name(i) for i in a.concat)
    head_b = tuple(b.node_name(i) for i in b.concat)
    choices.append(_compare_sets("concat", head_a, head_b))
    return GenotypeDiff(tuple(choices))


# --------------------------------------------------------------------------------------------
# Random genotypes (baselines for search, and property tests)


def random_genotype(
    input_names: Sequence[str],
    cells: int,
    steps: int,
    primitives: Sequence[str],
    cell_multiplier: int,
    rng: random.Random,
) -> Genotype:
    """A uniformly random valid genotype of the given shape: random search's sample, and the
    null model against which a searched genotype's similarity to a baseline is judged.

    Each cell and step takes two distinct inputs (an ordered pair, uniform) and a non-zero
    primitive; a cell concatenates all its steps; the head reads the last `cell_multiplier` cells.
    """
    choices = [p for p in primitives if p != "zero"]
    if not choices:
        raise GenotypeError(f"primitives: need a non-zero primitive, got {list(primitives)!r}")
    if cells < 1 or steps < 1:
        raise GenotypeError(f"need at least one cell and one step, got cells={cells}, steps={steps}")
    if not 1 <= cell_multiplier <= cells:
        raise GenotypeError(f"cell_multiplier: {cell_multiplier} is not in 1..{cells}")
    n = len(input_names)
    genes = []
    for k in range(cells):
        step_genes = tuple(
            StepGene(_random_pair(rng, range(2 + j)), rng.choice(choices)) for j in range(steps)
        )
        genes.append(CellGene(_random_pair(rng, range(n + k)), step_genes, tuple(range(2, 2 + steps))))
    return Genotype(tuple(input_names), tuple(genes), tuple(range(n + cells - cell_multiplier, n + cells)))


def _random_pair(rng: random.Random, nodes: range) -> tuple[int, int]:
    """Two distinct nodes, an ordered pair drawn uniformly."""
    first, second = rng.sample(nodes, 2)
    return first, second
