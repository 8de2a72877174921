"""Every timing the docs quote, written from one record that names the benchmark and machine that measured it.

bench/timings.toml holds one table per measured figure: its value and unit, how the docs write it (`text`, a
format string over `value` and `duration`), what it measures, the command that measured it, the machine and
the date (and `source`, where the value was copied from bench/RESULTS.md rather than recorded by `command`).
The docs quote a figure only inside a generated span, between HTML comments that Markdown does not render:

    <!-- timing: pipeline_recipe -->about 43 s (2-core AMD EPYC, 2026-12-03, `time ssnas run ...`)<!-- /timing -->

A span may name several keys, for figures one sentence quotes together. Benchmarks run with `--record` call
`publish`, which records their figures and rewrites every span, so that re-running one updates the docs.

    python bench/timings.py                      # rewrite every span from the records
    python bench/timings.py --check              # exit 1 listing stale spans and timings quoted outside one
    python bench/timings.py --record KEY VALUE   # a figure measured by hand, in the record's unit, on this machine
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import platform
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = Path("bench/timings.toml")  # relative to a repository root
FIELDS = ("value", "unit", "text", "what", "command", "machine", "date", "source")
UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "min": 60.0}
UNITS = (*UNIT_SECONDS, "samples/s")

# A timing phrase: a number (or range) and a unit of time ("43 s", "about 2.5 seconds", "1-4 s", "10 min",
# "250 ms", "5m48s"), a throughput in samples/s, or "about a minute" and the like. Fenced code blocks and
# inline code are not searched: they show commands, options and sample output, not figures the docs promise.
TIMING = re.compile(
    r"(?:\babout )?(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?:\s?(?:-|to)\s?\d+(?:,\d{3})*(?:\.\d+)?)?\s?"
    r"(?:samples/s|ms|s|sec|seconds?|min|minutes?|h|hours?)\b"
    r"|(?<![\w.])\d+m\d+(?:\.\d+)?s\b"
    r"|\babout (?:a|an|half a) (?:second|minute|hour)\b"
)
# Durations the docs state that are settings or instructions, not measurements: phrase -> why it is one.
NOT_MEASURED = {
    "queued or running for 2 s": "LINGER_S, how long an idle scheduler waits before it exits (scheduling/daemon.py)",
    "checks every 2 s": "the poll interval of a following `ssnas run`",
    "at most 60 s": "READY_TIMEOUT_S, how long a slot waits for its fork server (scheduling/warm.py)",
    "SIGUSR2 90 s before it": "the warning SLURM is asked to send before the time limit",
    "goes stale (5 minutes)": "the heartbeat age after which a SLURM run reads lost",
    "for up to 5 minutes": "how long a SLURM job waits for a new scheduler",
    "within 5 minutes": "how long a SLURM job waits for a new scheduler",
    "a pause of 1-4 s": "the pause the screen captures of docs/tui-screens.md were taken with",
}
SPAN = re.compile(r"<!-- timing: (?P<keys>\w+(?: \w+)*) -->(?P<text>.*?)<!-- /timing -->")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
COMMENT = re.compile(r"<!--.*?-->")
HEADER = """\
# Measured timings the docs quote (bench/timings.py). One table per figure; `text` is how the docs write it.
# Benchmarks run with --record rewrite their tables and the docs: python bench/timings.py --check
"""


@dataclasses.dataclass(frozen=True)
class Record:
    """One measured figure and where it comes from."""

    key: str
    value: float
    unit: str
    text: str
    what: str
    command: str
    machine: str
    date: str
    source: str | None = None

    def phrase(self) -> str:
        """The figure as the docs write it, e.g. "about 43 s"."""
        seconds = self.value * UNIT_SECONDS[self.unit] if self.unit in UNIT_SECONDS else None
        return self.text.format(value=self.value, duration=clock(seconds) if seconds is not None else "")

    def citation(self) -> str:
        """Where the figure was measured: machine, date, and the command (or, if copied, where from)."""
        return f"({self.machine}, {self.date}, {self.source or f'`{self.command}`'})"


def clock(seconds: float) -> str:
    """A duration as the docs write one: 2.8 s, 43 s, 6 min 37 s, 22 min."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def render(records: Sequence[Record]) -> str:
    """The text of a span: its figures in order, each run of figures measured alike cited once after it."""
    groups = itertools.groupby(records, key=Record.citation)
    return ", ".join(f"{', '.join(r.phrase() for r in group)} {citation}" for citation, group in groups)


def load(root: Path = ROOT) -> dict[str, Record]:
    """The records of `root`'s bench/timings.toml, checked for a known unit and a text that formats."""
    with open(root / RECORDS, "rb") as f:
        tables = tomllib.load(f)
    records = {key: Record(key=key, **table) for key, table in tables.items()}
    for entry in records.values():
        if entry.unit not in UNITS:
            raise ValueError(f"{RECORDS}: [{entry.key}] unit {entry.unit!r} is not one of {', '.join(UNITS)}")
        entry.phrase()
    return records


def dump(records: Mapping[str, Record]) -> str:
    """bench/timings.toml's text: flat tables of floats and strings (JSON's string escapes are TOML's)."""
    tables = []
    for record in records.values():
        values = {field: getattr(record, field) for field in FIELDS if getattr(record, field) is not None}
        lines = [f"{field} = {value!r}" if isinstance(value, float) else f"{field} = {json.dumps(value)}"
                 for field, value in values.items()]
        tables.append("\n".join([f"[{record.key}]", *lines]))
    return HEADER + "\n" + "\n\n".join(tables) + "\n"


def this_machine() -> str:
    """The cores this process may use and the CPU's model, e.g. "2-core AMD EPYC"."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores}-core {cpu_model()}"


def loaded_machine(loads: Sequence[float]) -> str:
    """This machine under the 1-minute load averages seen while measuring, e.g. "2-core AMD EPYC at load 4 to 7":
    on a shared machine the load explains a figure as much as the hardware does."""
    low, high = round(min(loads)), round(max(loads))
    if high < 1:
        return this_machine()
    return f"{this_machine()} at load {low}" + (f" to {high}" if high != low else "")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, without trademarks, clock and core count; else the platform's."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            name = line.partition(":")[2]
            return re.sub(r"\((?:R|TM)\)|\s+\d+-Core|\s+Processor|\s+CPU\s+@.*", "", name).strip()
    return platform.processor() or platform.machine()


def record(key: str, value: float, *, unit: str | None = None, command: str | None = None,
           machine: str | None = None, root: Path = ROOT) -> Record:
    """Store a new measurement of `key` (in `unit`, default the record's), measured today on this machine by
    `command` (default: the record's); its text and description stay. Only known keys: a new figure is
    added to bench/timings.toml by hand, with the sentence that quotes it."""
    records = load(root)
    old = records[key]
    if unit is not None and unit != old.unit:
        value = value * UNIT_SECONDS[unit] / UNIT_SECONDS[old.unit]
    new = dataclasses.replace(old, value=round(float(value), 3), command=command or old.command,
                              machine=machine or this_machine(), date=datetime.date.today().isoformat(), source=None)
    records[key] = new
    (root / RECORDS).write_text(dump(records))
    return new


def invocation(argv: Sequence[str] | None = None) -> str:
    """The command line a benchmark was started with (default: this process's), as its records cite it, without
    --record."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    name = script.relative_to(ROOT) if script.is_relative_to(ROOT) else Path(script.name)
    return shlex.join(["python", str(name), *(arg for arg in argv[1:] if arg != "--record")])


def refuse_other_recipes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`--record` stores what the docs quote for the shipped recipe: a figure of another recipe is refused."""
    shipped = parser.get_default("recipe")
    if args.record and args.recipe != shipped:
        parser.error(f"--record measures the shipped {shipped}: leave --recipe out")


def publish(figures: Mapping[str, tuple[float, str]], machine: str | None = None, root: Path = ROOT) -> None:
    """For a benchmark's --record: store each figure (key -> value, unit) as measured by this command line,
    then rewrite the docs that quote them."""
    command = invocation()
    for key, (value, unit) in figures.items():
        new = record(key, value, unit=unit, command=command, machine=machine, root=root)
        print(f"recorded {key}: {new.phrase()} {new.citation()}", file=sys.stderr)
    for path in write_docs(root):
        print(f"rewrote {path.relative_to(root)}", file=sys.stderr)


def documents(root: Path = ROOT) -> list[Path]:
    """The files whose timings must be cited: README.md, docs/*.md but the results log, recipe comments."""
    docs = [path for path in sorted((root / "docs").glob("*.md")) if path.name != "RESULTS.md"]
    return [path for path in [root / "README.md", *docs, *sorted((root / "recipes").glob("*.toml"))] if path.is_file()]


def write_docs(root: Path = ROOT, records: Mapping[str, Record] | None = None) -> list[Path]:
    """Rewrite every span of known keys from the records; return the files that changed."""
    records = load(root) if records is None else records

    def fresh(span: re.Match[str]) -> str:
        keys = span["keys"].split()
        if any(key not in records for key in keys):
            return span[0]  # --check names it
        return f"<!-- timing: {span['keys']} -->{render([records[key] for key in keys])}<!-- /timing -->"

    changed = []
    for path in documents(root):
        text = path.read_text()
        new = SPAN.sub(fresh, text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def prose_lines(path: Path, text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the text where timings are promised: outside code blocks, inline code,
    spans and comments; in a TOML file, its comments. What is left out is blanked, keeping positions."""
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if path.suffix == ".toml":
            keep = line.lstrip().startswith("#")
        else:
            fence = FENCE.match(line) is not None
            keep = not (in_code or fence)
            in_code ^= fence
        if keep:
            for pattern in (SPAN, COMMENT, INLINE_CODE):
                line = pattern.sub(lambda m: " " * len(m[0]), line)
            yield number, line


def uncited(path: Path, text: str) -> Iterator[tuple[int, str]]:
    """(line number, phrase) of each timing phrase outside a span that NOT_MEASURED does not excuse."""
    for number, line in prose_lines(path, text):
        excused = [m.span() for phrase in NOT_MEASURED for m in re.finditer(re.escape(phrase), line)]
        for hit in TIMING.finditer(line):
            if not any(start <= hit.start() and hit.end() <= end for start, end in excused):
                yield number, hit[0]


def spans(text: str) -> Iterator[tuple[int, re.Match[str]]]:
    """(line number, match) of each span."""
    for number, line in enumerate(text.splitlines(), 1):
        for span in SPAN.finditer(line):
            yield number, span


def problems(root: Path = ROOT, records: Mapping[str, Record] | None = None) -> list[str]:
    """Every stale, unknown or misplaced span, timing quoted outside a span, and record quoted nowhere."""
    records = load(root) if records is None else records
    found: list[str] = []
    used: set[str] = set()
    for path in documents(root):
        name, text = path.relative_to(root), path.read_text()
        for number, span in spans(text):
            keys = span["keys"].split()
            used.update(keys)
            unknown = [key for key in keys if key not in records]
            if unknown:
                found.append(f"{name}:{number}: no record {', '.join(unknown)} in {RECORDS}")
            elif path.suffix == ".md" and not span.string[:span.start()].strip():
                found.append(f"{name}:{number}: timing {span['keys']} begins a line, where Markdown reads a comment "
                             "as the start of an HTML block: move a word before it")
            elif span["text"] != (want := render([records[key] for key in keys])):
                found.append(f"{name}:{number}: stale timing {span['keys']}: reads {span['text']!r}, "
                             f"the records give {want!r}")
        found += [f"{name}:{number}: {phrase!r} quotes a timing outside a <!-- timing: KEY --> span"
                  for number, phrase in uncited(path, text)]
    found += [f"{RECORDS}: [{key}] is quoted nowhere" for key in records if key not in used]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale or uncited timings; exit 1 if any")
    parser.add_argument("--record", nargs=2, metavar=("KEY", "VALUE"), help="store a figure measured by hand")
    parser.add_argument("--command", help="with --record: the command that measured it (default: the record's)")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        print("\n".join(found) or f"every timing is cited and matches {RECORDS}")
        return 1 if found else 0
    if args.record:
        key, value = args.record
        record(key, float(value), command=args.command)
    for path in write_docs():
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
