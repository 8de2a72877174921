"""Genotypes drawn as text: a small wiring diagram of one genotype, and the diff of two.

The graph shows, cell by cell, the two nodes a cell reads joining into it, what the cell computes,
and a bus on the right collecting the cells the head concatenates:

    inputs  image[0 1 2 3]  text[0 1]
    image[2] ─┐
    text[0]  ─┴─▶ cell0 = concat_fc(text[0], image[2]) ─┐
    text[0]  ─┐                                          │
    cell0    ─┴─▶ cell1 = linear_glu(text[0], cell0) ───┴─▶ head = concat(cell0, cell1)

When the head does not fit on the right it is drawn below, fed from the bus.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ssnas.nas.genotype import Genotype, GenotypeDiff, diff

NO_GENOTYPE = "no genotype yet"

_LEVEL = re.compile(r"(.+)\[(\d+)\]")
_MODALITY_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")
_WIRE = Style(dim=True)
_CELL = Style(bold=True)
_OP = Style(color="bright_yellow")
_HEAD = Style(bold=True, color="bright_green")


def modalities(input_names: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """Input nodes grouped by modality, in node order: {"image": [(0, "0"), ...], ...}.

    A name without a `[level]` is its own group with an empty level.
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for i, name in enumerate(input_names):
        m = _LEVEL.fullmatch(name)
        modality, level = (m[1], m[2]) if m else (name, "")
        groups.setdefault(modality, []).append((i, level))
    return groups


class NodeStyles:
    """A colour per modality, so the same input reads the same everywhere in the drawing."""

    def __init__(self, genotype: Genotype) -> None:
        self.genotype = genotype
        self.by_node: dict[int, Style] = {}
        for m, (_, nodes) in enumerate(modalities(genotype.input_names).items()):
            for i, _ in nodes:
                self.by_node[i] = Style(color=_MODALITY_COLOURS[m % len(_MODALITY_COLOURS)])

    def name(self, node: int) -> Text:
        return Text(self.genotype.node_name(node), style=self.by_node.get(node, _CELL))


def inputs_line(genotype: Genotype) -> Text:
    """`inputs  image[0 1 2 3]  text[0 1]`, the levels some cell reads in bold, the others dim."""
    used = {i for cell in genotype.cells for i in cell.inputs if i < genotype.num_inputs}
    styles = NodeStyles(genotype)
    line = Text("inputs ", style=_WIRE)
    for modality, nodes in modalities(genotype.input_names).items():
        colour = styles.by_node[nodes[0][0]]
        line.append(" " + modality, colour)
        if nodes[0][1]:
            line.append("[", colour)
            for k, (i, level) in enumerate(nodes):
                line.append((" " if k else "") + level, colour + Style(bold=True) if i in used else _WIRE)
            line.append("]", colour)
    return line


@dataclass
class GraphRow:
    """One drawn line; `output` is the cell whose result leaves on this line (for the head bus)."""

    text: Text
    output: int | None = None


def cell_rows(genotype: Genotype, k: int, name_width: int, styles: NodeStyles) -> list[GraphRow]:
    """A cell's two inputs joining into it, then what it computes (one line per step if several)."""
    cell = genotype.cells[k]
    a, b = cell.inputs
    first = Text.assemble(styles.name(a), " " * (name_width - len(genotype.node_name(a))), (" ─┐", _WIRE))
    second = Text.assemble(styles.name(b), " " * (name_width - len(genotype.node_name(b))), (" ─┴─▶ ", _WIRE))
    local = [styles.name(a), styles.name(b)] + [Text(f"step{j}", _CELL) for j in range(len(cell.steps))]
    calls = [_call(step.primitive, [local[i] for i in step.inputs]) for step in cell.steps]
    second.append(f"cell{k}", _CELL)
    if len(calls) == 1 and cell.concat == (2,):
        second.append(" = ")
        second.append_text(calls[0])
        return [GraphRow(first), GraphRow(second, output=k)]
    indent = " " * (second.cell_len + 1)
    rows = [GraphRow(first)]
    for j, call in enumerate(calls):
        prefix = second if j == 0 else Text(indent)
        prefix.append(" ┬ " if j == 0 else "├ ", _WIRE)
        prefix.append(f"step{j}", _CELL)
        prefix.append(" = ")
        prefix.append_text(call)
        rows.append(GraphRow(prefix, output=k if j == 0 else None))
    out = Text(indent)
    out.append("└ ", _WIRE)
    out.append_text(_call("concat", [local[i] for i in cell.concat], style=_WIRE))
    rows.append(GraphRow(out))
    return rows


def _call(name: str, args: Sequence[Text], style: Style = _OP) -> Text:
    text = Text(name, style=style)
    text.append("(")
    for i, arg in enumerate(args):
        if i:
            text.append(", ")
        text.append_text(arg)
    text.append(")")
    return text


def head_text(genotype: Genotype, styles: NodeStyles) -> Text:
    text = Text("head", style=_HEAD)
    text.append(" = ")
    text.append_text(_call("concat", [styles.name(i) for i in genotype.concat], style=_HEAD))
    return text


def list_lines(genotype: Genotype, styles: NodeStyles) -> list[Text]:
    """No wires, one assignment a line (as `Genotype.describe`): for widths the diagram does not fit."""
    lines = [inputs_line(genotype)]
    for k, cell in enumerate(genotype.cells):
        local = [styles.name(i) for i in cell.inputs]
        local += [Text(f"cell{k}.step{j}", _CELL) for j in range(len(cell.steps))]
        calls = [_call(step.primitive, [local[i] for i in step.inputs]) for step in cell.steps]
        if len(calls) == 1 and cell.concat == (2,):
            lines.append(Text.assemble((f"cell{k}", _CELL), " = ", calls[0]))
            continue
        lines += [Text.assemble((f"cell{k}.step{j}", _CELL), " = ", call) for j, call in enumerate(calls)]
        lines.append(Text.assemble((f"cell{k}", _CELL), " = ", _call("concat", [local[i] for i in cell.concat], _WIRE)))
    lines.append(head_text(genotype, styles))
    return lines


def graph_lines(genotype: Genotype, width: int) -> list[Text]:
    """The whole drawing at `width` columns: the head on the right when it fits, else below; a plain
    list when even the wires do not fit."""
    styles = NodeStyles(genotype)
    used = [genotype.node_name(i) for cell in genotype.cells for i in cell.inputs]
    name_width = max(map(len, used))
    rows = [row for k in range(len(genotype.cells)) for row in cell_rows(genotype, k, name_width, styles)]
    if max(row.text.cell_len for row in rows) + 2 > width:
        return list_lines(genotype, styles)
    head = head_text(genotype, styles)
    heads = {i - genotype.num_inputs for i in genotype.concat}
    outputs = [n for n, row in enumerate(rows) if row.output in heads]
    bus = max(row.text.cell_len for row in rows) + 2
    right = bus + 4 + head.cell_len <= width
    lines = [inputs_line(genotype)]
    for n, row in enumerate(rows):
        line = row.text.copy()
        if outputs[0] <= n <= outputs[-1] or (not right and n > outputs[-1]):
            line.append_text(_bus(line.cell_len, bus, n, outputs, right, head))
        lines.append(line)
    if not right:
        lines.append(_head_below(head, bus))
    return lines


def _bus(start: int, bus: int, n: int, outputs: list[int], right: bool, head: Text) -> Text:
    """What the line `n` carries at the bus column: a joint, a pass-through, or the turn to the head."""
    text = Text(style=_WIRE)
    if n not in outputs:
        text.append(" " * (bus - start) + "│")
        return text
    text.append(" " + "─" * (bus - start - 1))
    last = n == outputs[-1]
    if right and last:
        text.append(("┴" if n != outputs[0] else "─") + "─▶ ")
        text.append_text(head)
    else:
        text.append("┐" if n == outputs[0] else "┤")
    return text


def _head_below(head: Text, bus: int) -> Text:
    """`head = concat(...) ◀────┘` under the last cell, or the head after a turn when it is too long."""
    if head.cell_len + 3 <= bus:
        line = head.copy()
        line.append(" ◀" + "─" * (bus - head.cell_len - 2) + "┘", _WIRE)
        return line
    line = Text(" " * bus + "└─▶ ", style=_WIRE)
    line.append_text(head)
    return line


class GraphDrawing:
    """A Rich renderable that lays the graph out at the width it is given."""

    def __init__(self, genotype: Genotype) -> None:
        self.genotype = genotype

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n", no_wrap=True, overflow="crop").join(graph_lines(self.genotype, options.max_width))


class GenotypeGraph(Static):
    """One genotype as a wiring diagram (see the module docstring); None -> `no genotype yet`."""

    DEFAULT_CSS = """
    GenotypeGraph {
        height: auto;
        padding: 0 1;
    }
    GenotypeGraph.-empty {
        color: $text-muted;
    }
    """

    def __init__(self, genotype: Genotype | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.genotype: Genotype | None = None
        self.set_genotype(genotype)

    def set_genotype(self, genotype: Genotype | None) -> None:
        """Show `genotype`; a no-op when it is the same one (equal genotypes draw the same)."""
        if genotype is not None and genotype == self.genotype and self.genotype is not None:
            return
        self.genotype = genotype
        self.set_class(genotype is None, "-empty")
        self.update(NO_GENOTYPE if genotype is None else GraphDrawing(genotype))


# -- diff -----------------------------------------------------------------------------------------


def similarity_bar(similarity: float, width: int = 20) -> Text:
    """`similarity 0.67 █████████████░░░░░░░`, green when close, yellow halfway, red when far."""
    filled = round(similarity * width)
    colour = "green" if similarity >= 0.8 else "yellow" if similarity >= 0.5 else "red"
    text = Text("similarity ", style=_WIRE)
    text.append(f"{similarity:.2f} ", Style(bold=True))
    text.append("█" * filled, Style(color=colour))
    text.append("░" * (width - filled), _WIRE)
    return text


def diff_table(result: GenotypeDiff, a_label: str, b_label: str) -> Table:
    """Every compared choice; `*` and colour on the differing ones (red: nothing in common,
    yellow: partly), the matching ones dim."""
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style=Style(bold=True))
    table.add_column("", width=1, no_wrap=True)
    table.add_column("choice", no_wrap=True, overflow="ellipsis")
    table.add_column(a_label, overflow="ellipsis", no_wrap=True)
    table.add_column(b_label, overflow="ellipsis", no_wrap=True)
    for choice in result.choices:
        if choice.differs:
            colour = Style(color="red" if choice.matched == 0 else "yellow")
            table.add_row(Text("*", Style(color="red", bold=True)), choice.path, choice.a, choice.b,
                          style=colour + Style(bold=True))
        else:
            table.add_row(" ", choice.path, choice.a, choice.b, style=_WIRE)
    return table


class GenotypeDiffView(Static):
    """Two genotypes choice by choice (ssnas.nas.genotype.diff), then their similarity."""

    DEFAULT_CSS = """
    GenotypeDiffView {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("nothing to compare yet", name=name, id=id, classes=classes)
        self.diff: GenotypeDiff | None = None

    @property
    def differing_paths(self) -> list[str]:
        """The paths marked `*`."""
        return [c.path for c in self.diff.choices if c.differs] if self.diff else []

    def set_diff(self, a: Genotype, b: Genotype, a_label: str = "a", b_label: str = "b") -> None:
        self.diff = diff(a, b)
        differing = len(self.differing_paths)
        summary = similarity_bar(self.diff.similarity)
        summary.append(f"  {differing} of {len(self.diff.choices)} choices differ", _WIRE)
        self.update(Group(diff_table(self.diff, a_label, b_label), summary))
