"""Shell sessions in the docs, run and compared by shape: the evaluator of ```console blocks (tests/test_docs.py).

A ```console block is a session: each `$ ` line (with `\\`-continued lines) is a command, the lines up to
the next one what it printed. The command runs in bash in the document's workspace, stdout and stderr
together, and its output must have the documented *shape*: the same lines, word for word, where ids,
numbers and times may differ (they are masked), and a `...` line stands for any number of lines. The exit
status must be what docs/cli.md's policy gives: 2 when the documented output has an `Error:` line, else 0
(not checked for a pipeline, whose status is its last command's).

Ids the docs show stand for whatever ids the real command printed at the same place: once a command has
printed them, later commands of the document that name a documented id (or a prefix of one) get the
real one instead.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sybil import Example

ID = re.compile(r"\b(?:g?[0-9a-f]{8,12}|[0-9a-f]{32})\b")  # run, group (g...) and MLflow run ids
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
ID_PREFIX = re.compile(r"\b[0-9a-f]{4,12}\b")
ANY_LINES = "..."


@dataclass(frozen=True)
class Command:
    line: int  # of its `$ ` in the document, from 1
    text: str
    expected: tuple[str, ...]
    output_line: int  # of its first output line


UPDATES: dict[str, list[tuple[Command, list[str]]]] = {}  # document -> outputs to write in (SSNAS_UPDATE_DOCS=1)


@dataclass
class Workspace:
    """Where a document's sessions run: the folder, the environment, and the ids learnt so far."""

    folder: Path
    env: dict[str, str]  # a snippet of the document may change it for the sessions after it
    shown_as: str = "/home/me/project"  # how the docs write the folder's path
    ids: dict[str, str] = field(default_factory=dict)  # documented id -> the one the command printed


def parse_session(source: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(f"line {first_line + i}: a console block starts each command with '$ '")
        start, text = i, lines[i][2:]
        while text.endswith("\\"):
            i += 1
            text = text[:-1] + " " + lines[i].strip()
        i += 1
        output_start = i
        while i < len(lines) and not lines[i].startswith("$ "):
            i += 1
        expected = tuple(lines[output_start:i])
        while expected and not expected[-1].strip():
            expected = expected[:-1]
        commands.append(Command(first_line + start, text, expected, first_line + output_start))
    return commands


def shape(line: str) -> str:
    """A line with its ids and numbers masked and its runs of spaces made one (column widths follow values)."""
    return " ".join(NUMBER.sub("#", ID.sub("<id>", line)).split())


def lines_match(expected: list[str], actual: list[str]) -> bool:
    """Line by line by shape; a `...` line in `expected` takes any number of lines."""
    if not expected:
        return not actual
    if expected[0].strip() == ANY_LINES:
        return any(lines_match(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and shape(expected[0]) == shape(actual[0]) and lines_match(expected[1:], actual[1:])


def with_real_ids(text: str, ids: Mapping[str, str]) -> str:
    """`text` with every documented id (or unique prefix of one) replaced by the real id, cut to the same length."""
    def real(match: re.Match[str]) -> str:
        token = match.group(0)
        owners = {real_id for shown, real_id in ids.items() if shown.startswith(token)}
        return next(iter(owners))[: len(token)] if len(owners) == 1 else token

    return ID_PREFIX.sub(real, text)


def learn_ids(expected: list[str], actual: list[str], ids: dict[str, str]) -> None:
    """Pair the ids of same-shaped lines (a documented id is learnt once): the lines before the first `...`
    with the first printed ones, those after the last `...` with the last printed ones."""
    gaps = [i for i, line in enumerate(expected) if line.strip() == ANY_LINES]
    head, tail = (expected[: gaps[0]], expected[gaps[-1] + 1 :]) if gaps else (expected, [])
    pairs = [*zip(head, actual, strict=False), *zip(tail, actual[len(actual) - len(tail) :], strict=False)]
    for shown_line, real_line in pairs:
        if shape(shown_line) != shape(real_line):
            continue
        for shown, real_id in zip(ID.findall(shown_line), ID.findall(real_line), strict=True):
            ids.setdefault(shown, real_id)


def write_updates() -> None:
    """Put each printed output in place of its documented one (the maintainer reviews the diff)."""
    for path, updates in UPDATES.items():
        lines = Path(path).read_text().split("\n")
        for command, printed in sorted(updates, key=lambda update: -update[0].line):
            start = command.output_line - 1
            lines[start : start + len(command.expected)] = [line.rstrip() for line in printed]
        Path(path).write_text("\n".join(lines))
    UPDATES.clear()


def expected_status(command: Command) -> int | None:
    if "|" in command.text:
        return None
    return 2 if any(line.startswith("Error:") for line in command.expected) else 0


def run_command(command: Command, workspace: Workspace) -> tuple[int, list[str]]:
    done = subprocess.run(["bash", "-c", with_real_ids(command.text, workspace.ids)], cwd=workspace.folder,
                          env=workspace.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)
    output = done.stdout.replace(str(workspace.folder), workspace.shown_as).rstrip().splitlines()
    return done.returncode, output


def check_session(example: Example) -> None:
    """Sybil's evaluator for a ```console block; the document's workspace is its namespace's `workspace`. A
    command shown without output has only its exit status checked."""
    workspace: Workspace = example.namespace["workspace"]
    for command in parse_session(str(example.parsed), example.line + 1):
        status, actual = run_command(command, workspace)
        expected = list(command.expected)
        wanted = expected_status(command)
        problems = []
        if wanted is not None and status != wanted:
            problems.append(f"exit status {status}, documented {wanted}")
        update = os.environ.get("SSNAS_UPDATE_DOCS")
        if expected and (update == "all" or (update == "1" and not lines_match(expected, actual))):
            UPDATES.setdefault(example.path, []).append((command, actual))
        elif expected and not lines_match(expected, actual):
            problems.append("output differs in shape (SSNAS_UPDATE_DOCS=1 writes the printed one in)")
        if problems:
            raise AssertionError(
                f"{Path(example.path).name}, line {command.line}: $ {command.text}\n{'; '.join(problems)}\n"
                "documented:\n" + "\n".join(expected) + "\nprinted (paste into the docs if it is right):\n"
                + "\n".join(actual))
        learn_ids(expected, actual, workspace.ids)
