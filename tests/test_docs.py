"""The docs, run: every ```console session and ```python snippet of the documents below (Sybil parses them).

Sessions are compared with their documented output by shape (tests/doc_examples.py): a command whose
columns, fields, line count or exit status change fails here until its docs change with it. Each
document runs in its own workspace: docs/cli.md on the small registry of tests/example_registry.py
(with the ids the docs show) and a toy plugin installed; README.md on the real shipped pipeline,
run by its own example; docs/features.md in an empty folder its snippets fill. The README's Python
snippet trains the whole method in the test process, so it is left to `pytest -m slow`; its session
trains the same pipeline through `ssnas run` in the default run. A block that cannot
run here says why in a `<!-- skip: next "reason" -->` comment and shows as skipped.

To bring the docs in step after a deliberate change: `SSNAS_UPDATE_DOCS=1 pytest tests/test_docs.py` writes
what each differing command printed in place of its documented output (`all`: every command's), then
review the diff (a `...` line is replaced too; put it back where the output is long).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

from tests import example_registry
from tests.doc_examples import (
    Workspace,
    check_session,
    expected_status,
    learn_ids,
    lines_match,
    parse_session,
    with_real_ids,
    write_updates,
)
from tests.test_plugins import TOY_DATA, TOY_ENTRY_POINTS, TOY_OPS, TOY_SINK, write_distribution

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/cli.md", "docs/features.md")
DOC_IDS = ("3f2a9c01d2e4", "3f7b12e0a9c5", "8c41d0e7b5f6", "e09a5b3c7d18")  # as docs/cli.md shows them
REPORT_GROUP = "g7d01c9a4e2f"

PARSE = Sybil(parsers=[CodeBlockParser("console", check_session), PythonCodeBlockParser(), SkipParser()])
EXAMPLES = [(name, example) for name in DOCUMENTS for example in PARSE.parse(ROOT / name).examples()]
TRAINS_IN_PROCESS = "run_pipeline("  # a snippet that runs the whole method in the test process: `pytest -m slow`


def as_param(document: str, example: Example):
    marks = [pytest.mark.slow] if TRAINS_IN_PROCESS in str(example.parsed) else []
    return pytest.param(document, example, marks=marks, id=f"{document}:{example.line}")


def environment(**extra: str) -> dict[str, str]:
    """This interpreter's `ssnas` first on PATH, the default runs folder, local times in UTC."""
    env = {key: value for key, value in os.environ.items() if key not in ("SSNAS_RUNS", "COLUMNS")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", TZ="UTC", **extra)
    return env


def cli_workspace(folder: Path) -> Workspace:
    runs = folder / "runs"
    example_registry.build(runs, DOC_IDS, host="node1", lost=True)
    example_registry.add_paper_group(folder / "sweep-runs", REPORT_GROUP)  # its own folder: `ssnas runs` shows 4 runs
    site = folder.parent / "cli-site"
    write_distribution(site, "ssnas-toy-plugin", TOY_ENTRY_POINTS, {
        "toy_plugin/__init__.py": "", "toy_plugin/ops.py": TOY_OPS, "toy_plugin/data.py": TOY_DATA,
        "toy_plugin/sink.py": TOY_SINK})
    return Workspace(folder, environment(PYTHONPATH=str(site)))


def readme_workspace(folder: Path) -> Workspace:
    (folder / "recipes").symlink_to(ROOT / "recipes")
    return Workspace(folder, environment())


BUILDERS = {"README.md": readme_workspace, "docs/cli.md": cli_workspace, "docs/features.md": lambda f: Workspace(
    f, environment())}


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> Iterator[dict[str, Workspace]]:
    """Built once for the module; at its end, SSNAS_UPDATE_DOCS's outputs are written into the docs."""
    built = {}
    for name, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(Path(name).stem)
        built[name] = build(folder)
    yield built
    write_updates()


@pytest.mark.parametrize(("document", "example"), [as_param(name, example) for name, example in EXAMPLES])
def test_documented_example(document: str, example: Example, workspaces, monkeypatch) -> None:
    workspace = workspaces[document]
    example.namespace["workspace"] = workspace
    monkeypatch.chdir(workspace.folder)  # snippets read and write files where the sessions run
    for key in ("PATH", "TZ", "PYTHONPATH"):
        if key in workspace.env:
            monkeypatch.setenv(key, workspace.env[key])
    time.tzset()
    try:
        example.evaluate()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_every_documented_command_is_in_a_checked_session() -> None:
    """A `$ ssnas ...` line in a fence that is not ```console would never run: those are checked or skipped."""
    from sybil import Document
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

    lexer = FencedCodeBlockLexer(language=r"[^\n]*", mapping={"language": "language", "source": "source"})
    unchecked = []
    for name in DOCUMENTS:
        document = Document((ROOT / name).read_text(), str(ROOT / name))
        for region in lexer(document):
            prompts = [line for line in str(region.lexemes["source"]).splitlines() if line.startswith("$ ssnas")]
            if prompts and region.lexemes["language"] != "console":
                unchecked.append(f"{name}: ```{region.lexemes['language']} block with {prompts[0]!r}")
    assert not unchecked, unchecked


def test_sessions_are_compared_by_shape() -> None:
    documented = ["id        name  test F1", "3f2a9c01  ssl   0.512", "...", "similarity 0.92"]
    printed = ["id        name  test F1", "7c1e9a02d1  ssl   0.6", "a progress line", "another", "similarity 0.5"]
    assert lines_match(documented, printed)
    assert not lines_match(documented, [*printed[:-1], "similarity to bmnas 0.5"])  # a word changed
    assert not lines_match(documented[:2], printed[:2] + ["one line more"])
    assert not lines_match(["id  name  test F1"], ["id  name"])  # a column gone


def test_ids_a_session_printed_stand_in_for_the_documented_ones() -> None:
    ids: dict[str, str] = {}
    learn_ids(["group g5d0e1c2b7a9: 1 run(s) queued", "...", "7c1e9a02  ssl_search  finished"],
              ["group g0a1b2c3d4e5: 1 run(s) queued", "progress", "progress", "41d2b7e0  ssl_search  finished"], ids)
    assert ids == {"g5d0e1c2b7a9": "g0a1b2c3d4e5", "7c1e9a02": "41d2b7e0"}
    assert with_real_ids("ssnas diff 7c1e --baseline bmnas-mmimdb", ids) == "ssnas diff 41d2 --baseline bmnas-mmimdb"


def test_a_session_expects_exit_status_2_where_it_documents_an_error() -> None:
    first, second, piped = parse_session("$ ssnas runs --where 'seed >'\nError: --where: unexpected end\n"
                                         "$ ssnas show \\\n    3f2a\nid  3f2a9c01d2e4\n$ ssnas runs --json | jq .", 10)
    assert (first.text, first.line, expected_status(first)) == ("ssnas runs --where 'seed >'", 10, 2)
    assert (second.text, second.output_line, expected_status(second)) == ("ssnas show  3f2a", 14, 0)
    assert expected_status(piped) is None
