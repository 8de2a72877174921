"""Architecture weights as a heatmap, one epoch at a time: what the search favours and how sure it is.

Per cell: its input slots x and y over the candidate nodes, then per step the step's input slots and
its primitive distribution. A block's colour follows the weight on an absolute 0..1 ramp, so an
undecided search reads dark and a settled one bright; the choices derivation would make are marked
with `*`. After each row: its normalized entropy (1 = uniform) and top-1 margin, and a marker on a
judged choice that is still undecided (`ssnas.nas.certainty` computes all three); under the blocks
the epoch's verdict, so nobody reads a coin toss as a found architecture. The drawing adapts to the
width: full candidate names when wide, short ones (`img2`, `c0`, `attn`) when narrow, colour alone
when very narrow.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ssnas.nas.certainty import ChoiceCertainty, SearchCertainty, choice_certainties, summarize

EMPTY_TEXT = "no architecture weights (not a search run, or none logged yet)"
SLOT_NAMES = ("x", "y")

# Viridis in 8 steps: perceptually even and readable by colour-blind users; text flips to black on
# the bright half.
RAMP = ("#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725")
_RAMP_STYLES = tuple(Style(color="white" if i < 4 else "black", bgcolor=c) for i, c in enumerate(RAMP))
_CHOSEN = Style(bold=True, underline=True)
_DIM = Style(dim=True)
_TITLE = Style(bold=True)
_UNDECIDED = Style(color="#e8a33d", bold=True)  # amber: readable on dark and light themes
_DECIDED = Style(color="#4ac16d")

_MODALITY_SHORT = {"image": "img", "text": "txt", "audio": "aud", "video": "vid", "depth": "dep",
                   "skeleton": "skl", "rgb": "rgb", "pose": "pos"}
_OP_SHORT = {"attention": "attn", "linear_glu": "glu", "concat_fc": "cfc", "concat_conv_mish": "mish",
             "product": "prod"}
_LEVEL = re.compile(r"(.+)\[(\d+)\]")
_NUMBERED = re.compile(r"(cell|step)(\d+)")


def short_name(name: str) -> str:
    """A candidate name in at most 4-5 characters: image[2] -> img2, cell0 -> c0, attention -> attn."""
    if name in _OP_SHORT:
        return _OP_SHORT[name]
    if m := _LEVEL.fullmatch(name):
        return _MODALITY_SHORT.get(m[1], m[1][:3]) + m[2]
    if m := _NUMBERED.fullmatch(name):
        return m[1][0] + m[2]
    return name[:5]


def weight_style(weight: float) -> Style:
    """The ramp step for a weight in [0, 1] (values outside are clamped)."""
    return _RAMP_STYLES[min(max(int(weight * len(RAMP)), 0), len(RAMP) - 1)]


# -- data: rows -> distributions -> blocks --------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """One softmax: a cell or step input slot, or a step's primitives; `chosen` is what derivation picks."""

    kind: str  # cell_input | step_input | step_op
    cell: int
    step: int | None
    slot: int | None
    choices: tuple[str, ...]
    weights: tuple[float, ...]
    chosen: int
    certainty: ChoiceCertainty | None = None

    @property
    def undecided(self) -> bool:
        """A judged choice (cell input, primitive) whose top weight is still near uniform."""
        return self.certainty is not None and self.certainty.judged and not self.certainty.decided


@dataclass(frozen=True)
class Block:
    """Distributions drawn under one header: a cell's inputs, a step's inputs, or a step's op."""

    kind: str
    cell: int
    step: int | None
    rows: tuple[Distribution, ...]

    @property
    def choices(self) -> tuple[str, ...]:
        return self.rows[0].choices


def last_step_rows(rows: Sequence[Mapping]) -> list[Mapping]:
    """The rows logged last in an epoch (a search may log an epoch's weights more than once)."""
    if not rows or rows[-1].get("step") is None:
        return list(rows)
    last = rows[-1]["step"]
    return [r for r in rows if r.get("step") == last]


def blocks_of(rows: Iterable[Mapping]) -> list[Block]:
    """Group registry rows by (kind, cell, step, slot) in logged order; later duplicates win."""
    groups: dict[tuple, dict[str, float]] = {}
    for row in rows:
        key = (row["kind"], row["cell"], row.get("step_index"), row.get("slot"))
        groups.setdefault(key, {})[row["choice"]] = float(row["weight"])
    certainties = {(c.kind, c.cell, c.step, c.slot): c for c in choice_certainties(
        {"kind": kind, "cell": cell, "step_index": step, "slot": slot, "choice": choice, "weight": weight}
        for (kind, cell, step, slot), weights in groups.items() for choice, weight in weights.items())}
    by_block: dict[tuple, list[tuple[int | None, dict[str, float]]]] = {}
    for (kind, cell, step, slot), weights in groups.items():
        by_block.setdefault((kind, cell, step), []).append((slot, weights))
    return [Block(kind, cell, step, _distributions(kind, cell, step, slots, certainties))
            for (kind, cell, step), slots in by_block.items()]


def _distributions(kind: str, cell: int, step: int | None, slots: list[tuple[int | None, dict[str, float]]],
                   certainties: Mapping[tuple, ChoiceCertainty]) -> tuple[Distribution, ...]:
    slots = sorted(slots, key=lambda s: -1 if s[0] is None else s[0])
    values = [tuple(w.values()) for _, w in slots]
    if kind == "step_op":
        chosen = [_argmax_op(tuple(w), v) for (_, w), v in zip(slots, values, strict=True)]
    elif len(slots) == 2 and tuple(slots[0][1]) == tuple(slots[1][1]) and len(values[0]) > 1:
        chosen = list(_best_pair(values[0], values[1]))
    else:
        chosen = [_argmax(v, range(len(v))) for v in values]
    return tuple(Distribution(kind, cell, step, slot, tuple(w), v, c, certainties.get((kind, cell, step, slot)))
                 for (slot, w), v, c in zip(slots, values, chosen, strict=True))


def search_certainty(blocks: Iterable[Block]) -> SearchCertainty:
    """The summary over the judged choices of one epoch's blocks."""
    return summarize(d.certainty for b in blocks for d in b.rows if d.certainty is not None)


def _argmax(values: Sequence[float], candidates: Iterable[int]) -> int:
    """First index of the largest value among `candidates` (ties to the lower index, as derivation)."""
    best = -1
    for i in candidates:
        if best < 0 or values[i] > values[best]:
            best = i
    return max(best, 0)


def _argmax_op(choices: Sequence[str], values: Sequence[float]) -> int:
    """Derivation never picks `zero` (it would make the step a no-op), so neither does the marker."""
    candidates = [i for i, c in enumerate(choices) if c != "zero"] or range(len(choices))
    return _argmax(values, candidates)


def _best_pair(x: Sequence[float], y: Sequence[float]) -> tuple[int, int]:
    """The two distinct inputs derivation picks: the largest product x[a] * y[b] with a != b."""
    best, score = (0, 1), float("-inf")
    for a, wa in enumerate(x):
        for b, wb in enumerate(y):
            if a != b and wa * wb > score:
                best, score = (a, b), wa * wb
    return best


# -- drawing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertaintyColumn:
    """One number drawn after a row's weights: its header, its width, and how a choice gives it."""

    header: str
    width: int
    value: Callable[[ChoiceCertainty], str]


ENTROPY_3 = CertaintyColumn("entropy", 7, lambda c: f"{c.entropy:.3f}")
ENTROPY_2 = CertaintyColumn("entropy", 7, lambda c: f"{c.entropy:.2f}")
MARGIN_1 = CertaintyColumn("margin", 6, lambda c: f"{c.margin * 100:.1f}%")
MARGIN_0 = CertaintyColumn("margin", 6, lambda c: f"{c.margin * 100:.0f}%")


@dataclass(frozen=True)
class Tier:
    """How much a column shows: candidate names, the value format, and padding around it; then how
    much of each row's certainty follows its weights."""

    name: str
    namer: Callable[[str], str]
    value: Callable[[float], str] | None  # None: colour only
    pad: int
    min_value: int  # room a value with its marker needs
    long_labels: bool
    certainty: tuple[CertaintyColumn, ...] = ()
    undecided: str = "?"  # the marker of an undecided judged choice

    @property
    def certainty_width(self) -> int:
        return sum(c.width + 1 for c in self.certainty) + 1 + len(self.undecided)


TIERS = (
    Tier("full", lambda n: n, lambda w: f"{w * 100:.1f}%", 2, 7, True, (ENTROPY_3, MARGIN_1), "undecided"),
    Tier("short", short_name, lambda w: f"{w * 100:.0f}%", 2, 5, False, (ENTROPY_2, MARGIN_0)),
    Tier("tight", short_name, lambda w: f"{w * 100:.0f}%", 1, 5, False, (ENTROPY_2, MARGIN_0)),
    Tier("compact", short_name, lambda w: f"{min(w * 100, 99):.0f}", 0, 3, False,
         (CertaintyColumn("ent", 4, lambda c: f"{c.entropy:.2f}"),
          CertaintyColumn("mrg", 3, lambda c: f"{c.margin * 100:.0f}"))),
    Tier("bare", lambda n: short_name(n)[:2], None, 0, 2, False),
)


def block_title(block: Block, long: bool) -> str:
    what = {"cell_input": "inputs" if long else "in", "step_input": "inputs" if long else "in",
            "step_op": "op"}[block.kind]
    if block.step is None:
        return f"cell{block.cell} {what}"
    return f"  step{block.step} {what}" if long else f" step{block.step} {what}"


def row_label(dist: Distribution, long: bool) -> str:
    if dist.slot is None:
        return ""
    name = SLOT_NAMES[dist.slot] if dist.slot < len(SLOT_NAMES) else f"slot{dist.slot}"
    indent = 4 if long else 3
    return " " * (indent if dist.step is not None else indent - 2) + name


class HeatmapLayout:
    """Sizes for one tier: the label column, each block's column width, and where the certainty
    columns start (one place for every block, so they read as a table)."""

    def __init__(self, blocks: Sequence[Block], tier: Tier) -> None:
        self.tier = tier
        labels = [block_title(b, tier.long_labels) for b in blocks]
        labels += [row_label(d, tier.long_labels) for b in blocks for d in b.rows]
        self.label_width = max(map(len, labels), default=0) + 1
        self.cell_widths = [max(max(len(tier.namer(c)) for c in b.choices), tier.min_value) + tier.pad
                            for b in blocks]
        self.certainty_at = self.label_width + max(
            ((w + 1) * len(b.choices) for w, b in zip(self.cell_widths, blocks, strict=True)), default=0)
        self.width = self.certainty_at + tier.certainty_width


def choose_layout(blocks: Sequence[Block], width: int) -> HeatmapLayout:
    """The most detailed tier that fits `width`; the barest one otherwise (cropped)."""
    for tier in TIERS:
        layout = HeatmapLayout(blocks, tier)
        if layout.width <= width:
            return layout
    return layout


def block_lines(block: Block, cell_width: int, layout: HeatmapLayout) -> list[Text]:
    """A header of candidate names, then one row of coloured blocks per slot."""
    tier, lw = layout.tier, layout.label_width
    header = Text(block_title(block, tier.long_labels).ljust(lw), style=_TITLE, no_wrap=True)
    one_row = len(block.rows) == 1
    for i, choice in enumerate(block.choices):
        name = _cell_name(tier.namer(choice), cell_width, tier)
        picked = one_row and block.rows[0].chosen == i
        header.append(name, _CHOSEN if picked else _DIM)
        header.append(" ")
    if tier.certainty:
        header.pad_right(layout.certainty_at - header.cell_len)
        for column in tier.certainty:
            header.append(" " + column.header.rjust(column.width), _DIM)
    lines = [header]
    for dist in block.rows:
        line = Text(row_label(dist, tier.long_labels).ljust(lw), no_wrap=True)
        for i, weight in enumerate(dist.weights):
            chosen = i == dist.chosen
            style = weight_style(weight) + (_CHOSEN if chosen else Style())
            line.append(_cell_text(weight, chosen, cell_width, tier), style)
            line.append(" ")
        lines.append(_certainty_cells(line, dist, layout))
    return lines


def _certainty_cells(line: Text, dist: Distribution, layout: HeatmapLayout) -> Text:
    """The row's entropy and margin in the certainty columns, then the undecided marker: amber when
    undecided, dim for what is not judged (step inputs)."""
    choice, tier = dist.certainty, layout.tier
    if choice is None:
        return line
    line.pad_right(layout.certainty_at - line.cell_len)
    style = _UNDECIDED if dist.undecided else Style() if choice.judged else _DIM
    for column in tier.certainty:
        line.append(" " + column.value(choice).rjust(column.width), style)
    if dist.undecided:
        line.append(" " + tier.undecided, _UNDECIDED)
    return line


def _cell_name(name: str, width: int, tier: Tier) -> str:
    """Right-aligned with the digits below it (the value's marker column stays blank)."""
    if tier.value is None:
        return name[:width].center(width)
    right = tier.pad // 2 + 1
    return name[:width].rjust(width - right).ljust(width) if len(name) <= width - right else name[:width].ljust(width)


def _cell_text(weight: float, chosen: bool, width: int, tier: Tier) -> str:
    if tier.value is None:
        return ("◆" if chosen else "").center(width)
    text = tier.value(weight) + ("*" if chosen else " ")
    return text.rjust(width - tier.pad // 2) + " " * (tier.pad // 2) if len(text) <= width else text[:width]


def legend() -> Text:
    """`0 ▇▇▇▇▇▇▇▇ 100%`: the colour ramp."""
    text = Text("0 ", style=_DIM)
    for colour in RAMP:
        text.append("▇", Style(color=colour))
    text.append(" 100%", style=_DIM)
    return text


def verdict_lines(certainty: SearchCertainty, stage: str, width: int) -> list[Text]:
    """The verdict of `summarize`, wrapped to the width (it names every undecided choice)."""
    style = _DECIDED if certainty.decided else _UNDECIDED
    return [Text(line, style=style, no_wrap=True) for line in textwrap.wrap(
        certainty.verdict(stage), max(width, 20), subsequent_indent="  ", break_on_hyphens=False)]


class HeatmapDrawing:
    """A Rich renderable that lays out at whatever width it is given (the widget's content width)."""

    def __init__(self, header: Text, blocks: Sequence[Block], verdict: tuple[SearchCertainty, str] | None = None
                 ) -> None:
        self.header = header
        self.blocks = blocks
        self.verdict = verdict  # the epoch's certainty and the stage its verdict names
        self._cache: dict[int, Text] = {}

    def lines(self, width: int) -> list[Text]:
        layout = choose_layout(self.blocks, width)
        out = [self._header_line(width)]
        for block, cell_width in zip(self.blocks, layout.cell_widths, strict=True):
            if block.step is None and len(out) > 1:
                out.append(Text(""))
            out += block_lines(block, cell_width, layout)
        if self.verdict is not None:
            out += [Text(""), *verdict_lines(*self.verdict, width)]
        return out

    def _header_line(self, width: int) -> Text:
        header = self.header.copy()
        key = legend()
        room = width - header.cell_len - key.cell_len
        if room >= 2:
            header.append(" " * room)
            header.append_text(key)
        return header

    def text(self, width: int) -> Text:
        if width not in self._cache:
            self._cache[width] = Text("\n", no_wrap=True, overflow="crop").join(self.lines(width))
        return self._cache[width]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text(options.max_width)


# -- the widget -----------------------------------------------------------------------------------


class ArchHeatmap(Widget, can_focus=True):
    """Architecture weights of one epoch; left/right (or [ ]) step through epochs, home/end jump."""

    DEFAULT_CSS = """
    ArchHeatmap {
        height: auto;
        padding: 0 1;
    }
    ArchHeatmap:focus {
        background-tint: $foreground 5%;
    }
    ArchHeatmap.-empty {
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("left,left_square_bracket", "previous_epoch", "prev epoch"),
        Binding("right,right_square_bracket", "next_epoch", "next epoch"),
        Binding("home", "first_epoch", "first epoch", show=False),
        Binding("end", "last_epoch", "last epoch", show=False),
    ]

    class EpochChanged(Message):
        """The shown epoch changed (by key, or by following the newest epoch)."""

        def __init__(self, heatmap: ArchHeatmap, epoch: int) -> None:
            super().__init__()
            self.heatmap = heatmap
            self.epoch = epoch

        @property
        def control(self) -> ArchHeatmap:
            return self.heatmap

    epoch: reactive[int | None] = reactive(None, layout=True)
    """The epoch shown; None until weights arrive. Snaps to the nearest logged epoch."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: dict[int, list[Mapping]] = {}
        self._blocks: dict[int, list[Block]] = {}
        self.set_class(True, "-empty")

    # ---- feeding

    @property
    def epochs(self) -> list[int]:
        """Epochs with weights, in order."""
        return sorted(self._rows)

    def set_weights(self, by_epoch: Mapping[int, Sequence[Mapping]]) -> None:
        """Replace all weights: registry arch_weights rows grouped by epoch."""
        self._store(by_epoch, replace=True)

    def update_weights(self, by_epoch: Mapping[int, Sequence[Mapping]]) -> None:
        """Add or replace some epochs (what a poll read again), keeping the others."""
        self._store(by_epoch, replace=False)

    def _store(self, by_epoch: Mapping[int, Sequence[Mapping]], replace: bool) -> None:
        following = self.epoch is None or not self._rows or self.epoch == max(self._rows)
        if replace:
            self._rows.clear()
            self._blocks.clear()
        for epoch, rows in by_epoch.items():
            if rows and epoch is not None:
                self._rows[int(epoch)] = last_step_rows(rows)
                self._blocks.pop(int(epoch), None)
        self.set_class(not self._rows, "-empty")
        if not self._rows:
            self.epoch = None
        elif following:
            self.epoch = max(self._rows)
        else:
            self.epoch = self.validate_epoch(self.epoch)
        self.refresh(layout=True)

    # ---- what is shown

    def blocks(self, epoch: int | None = None) -> list[Block]:
        """The blocks of `epoch` (default: the shown one)."""
        epoch = self.epoch if epoch is None else epoch
        if epoch not in self._rows:
            return []
        if epoch not in self._blocks:
            self._blocks[epoch] = blocks_of(self._rows[epoch])
        return self._blocks[epoch]

    def certainty(self, epoch: int | None = None) -> SearchCertainty | None:
        """How sure the search is at `epoch` (default: the shown one); None without weights."""
        blocks = self.blocks(epoch)
        return search_certainty(blocks) if blocks else None

    def verdict(self, epoch: int | None = None) -> str:
        """The one-line verdict drawn under the blocks; "" without weights."""
        epoch = self.epoch if epoch is None else epoch
        certainty = self.certainty(epoch)
        return "" if certainty is None else certainty.verdict(f"epoch {epoch}")

    def chosen(self, epoch: int | None = None) -> dict[tuple, str]:
        """(kind, cell, step, slot) -> the marked choice: what derivation would pick."""
        return {(d.kind, d.cell, d.step, d.slot): d.choices[d.chosen]
                for b in self.blocks(epoch) for d in b.rows}

    def header(self) -> Text:
        """`epoch 3/9 (step 48)`: the shown epoch, the last one, and the training step it was logged at."""
        epoch = self.epoch
        shown = self._rows.get(epoch, []) if epoch is not None else []
        steps = [r["step"] for r in shown if r.get("step") is not None]
        header = Text.assemble(("epoch ", _DIM), (f"{epoch}", _TITLE), (f"/{max(self._rows)}", _DIM))
        if steps:
            header.append(f" (step {max(steps)})", _DIM)
        certainty = self.certainty()
        if certainty is not None and certainty.decided:
            header.append("  decided", _DECIDED)
        elif certainty is not None:
            header.append(f"  {len(certainty.undecided)} undecided", _UNDECIDED)
        return header

    def render(self) -> HeatmapDrawing | Text | str:
        if self.epoch is None or self.epoch not in self._rows:
            return EMPTY_TEXT
        try:
            blocks = self.blocks()
            return HeatmapDrawing(self.header(), blocks, (search_certainty(blocks), f"epoch {self.epoch}"))
        except (KeyError, TypeError, ValueError) as error:  # a malformed row: say so, do not crash the app
            return Text(f"cannot draw the architecture weights of epoch {self.epoch}: {error!r}", style="red")

    # ---- epochs

    def validate_epoch(self, epoch: int | None) -> int | None:
        if not self._rows:
            return None
        epochs = self.epochs
        if epoch is None:
            return epochs[-1]
        return min(epochs, key=lambda e: (abs(e - epoch), e))

    def watch_epoch(self, old: int | None, new: int | None) -> None:
        if new is not None and new != old:
            self.post_message(self.EpochChanged(self, new))

    def _step(self, delta: int) -> None:
        epochs = self.epochs
        if epochs and self.epoch is not None:
            i = epochs.index(self.epoch)
            self.epoch = epochs[min(max(i + delta, 0), len(epochs) - 1)]

    def action_previous_epoch(self) -> None:
        self._step(-1)

    def action_next_epoch(self) -> None:
        self._step(1)

    def action_first_epoch(self) -> None:
        if self._rows:
            self.epoch = self.epochs[0]

    def action_last_epoch(self) -> None:
        if self._rows:
            self.epoch = self.epochs[-1]
