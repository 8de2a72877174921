"""Timings in the docs cannot drift: each is a span written from bench/timings.toml, naming its machine, date and
command (bench/timings.py). Fast and torch-free: only text is read and written."""

from __future__ import annotations

import datetime
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_timings():
    """bench/timings.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("timings", ROOT / "bench" / "timings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["timings"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


timings = load_timings()

# Phrases the detector must take for timings, and phrases it must not (options, shapes, counts, shares).
TIMING_PHRASES = ["about 45 seconds", "10 min 15 s", "2.5 s", "680 samples/s", "250 ms", "1-4 s", "10 to 20 s",
                  "5m48s", "about a minute", "about an hour", "3 hours"]
OTHER_PHRASES = ["--poll 0.25", "(N, 512, h, w)", "3 seeds", "2 cells x 1 step", "1,481 tests", "about 20 %",
                 "C = 32", "4 x 4 maps", "a second `ssnas tune`", "about once a second", "Python 3.11"]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A repository of one doc and one recipe that quote the pipeline record, and a records file of it alone."""
    records = timings.load(ROOT)
    (tmp_path / "bench").mkdir()
    (tmp_path / timings.RECORDS).write_text(timings.dump({"pipeline_recipe": records["pipeline_recipe"]}))
    span = f"<!-- timing: pipeline_recipe -->{timings.render([records['pipeline_recipe']])}<!-- /timing -->"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(f"The pipeline takes {span}.\n\n```console\n$ sleep 9 s\n```\n")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.toml").write_text(f"# runs in {span}\nlimit = \"9 s\"\n")
    return tmp_path


def test_repository_timings_are_cited_and_current() -> None:
    assert timings.problems(ROOT) == []


def test_every_key_quoted_has_a_record_and_every_record_is_quoted() -> None:
    used = {key for path in timings.documents(ROOT) for _, span in timings.spans(path.read_text())
            for key in span["keys"].split()}
    assert used == set(timings.load(ROOT))


def test_each_excused_duration_still_occurs() -> None:
    """NOT_MEASURED lists settings and instructions, not measurements; an entry no doc says any more goes."""
    texts = [line for path in timings.documents(ROOT) for _, line in timings.prose_lines(path, path.read_text())]
    assert [phrase for phrase in timings.NOT_MEASURED if not any(phrase in line for line in texts)] == []


@pytest.mark.parametrize("phrase", TIMING_PHRASES)
def test_detector_finds_timings(phrase: str) -> None:
    hits = [hit[0] for hit in timings.TIMING.finditer(f"it took {phrase} here")]
    assert hits and all(hit in phrase for hit in hits)


@pytest.mark.parametrize("phrase", OTHER_PHRASES)
def test_detector_leaves_other_numbers(phrase: str) -> None:
    assert list(timings.uncited(Path("x.md"), f"it has {phrase} here\n")) == []


def test_code_and_inline_code_are_not_promises() -> None:
    text = "run `sleep 9 s` then\n```\n$ time x\n0.5 s\n```\nthen 3 s\n"
    assert list(timings.uncited(Path("x.md"), text)) == [(6, "3 s")]


def test_uncited_and_stale_timings_are_reported_and_write_docs_fixes_the_stale(copy: Path) -> None:
    guide = copy / "docs" / "guide.md"
    guide.write_text(guide.read_text() + "A check takes about 9 s.\n")
    uncited = "docs/guide.md:6: 'about 9 s' quotes a timing outside a <!-- timing: KEY --> span"
    assert timings.problems(copy) == [uncited]

    new = timings.record("pipeline_recipe", 0.75, unit="min", command="python bench/pipeline_speed.py", root=copy)
    found = timings.problems(copy)
    assert len(found) == 3 and found[1] == uncited
    assert found[0].startswith("docs/guide.md:1: stale timing pipeline_recipe: reads 'about 43 s (")
    assert found[2].startswith("recipes/r.toml:1: stale timing pipeline_recipe: reads 'about 43 s (")

    assert timings.write_docs(copy) == [guide, copy / "recipes" / "r.toml"]
    assert timings.problems(copy) == [uncited]
    today = datetime.date.today().isoformat()
    assert new.value == 45.0 and new.date == today and new.machine == timings.this_machine() and new.source is None
    assert f"about 45 s ({new.machine}, {today}, `python bench/pipeline_speed.py`)" in guide.read_text()
    assert timings.load(copy)["pipeline_recipe"] == new


def test_unknown_orphan_and_misplaced_spans_are_reported(copy: Path) -> None:
    guide = copy / "docs" / "guide.md"
    text = guide.read_text().replace("timing: pipeline_recipe", "timing: pipeline_recipes")
    guide.write_text(text + "<!-- timing: pipeline_recipes -->x<!-- /timing --> opens a line.\n")
    found = timings.problems(copy)
    assert "docs/guide.md:1: no record pipeline_recipes in bench/timings.toml" in found
    assert "docs/guide.md:6: no record pipeline_recipes in bench/timings.toml" in found
    assert "bench/timings.toml: [pipeline_recipe] is quoted nowhere" not in found  # the recipe still quotes it
    (copy / "recipes" / "r.toml").unlink()
    assert "bench/timings.toml: [pipeline_recipe] is quoted nowhere" in timings.problems(copy)

    guide.write_text(f"x\n{timings.SPAN.search(text.replace('pipeline_recipes', 'pipeline_recipe'))[0]} opens.\n")
    [found] = timings.problems(copy)
    assert found.startswith("docs/guide.md:2: timing pipeline_recipe begins a line")


def test_render_cites_each_run_of_figures_measured_alike() -> None:
    base = timings.Record(key="a", value=1.46, unit="s", text="about {value:.1f} s cold", what="", command="b.py",
                          machine="2-core X", date="2026-12-03")
    warm = timings.dataclasses.replace(base, key="b", value=0.91, text="{value:.1f} s warm")
    assert timings.render([base, warm]) == "about 1.5 s cold, 0.9 s warm (2-core X, 2026-12-03, `b.py`)"
    moved = timings.dataclasses.replace(warm, date="2026-12-04", source='bench/RESULTS.md "X"')
    assert timings.render([base, moved]) == ('about 1.5 s cold (2-core X, 2026-12-03, `b.py`), '
                                             '0.9 s warm (2-core X, 2026-12-04, bench/RESULTS.md "X")')


@pytest.mark.parametrize(("seconds", "text"), [(2.84, "2.8 s"), (43.2, "43 s"), (397, "6 min 37 s"), (1320, "22 min")])
def test_clock(seconds: float, text: str) -> None:
    assert timings.clock(seconds) == text


def test_records_file_round_trips() -> None:
    assert timings.dump(timings.load(ROOT)) == (ROOT / timings.RECORDS).read_text()


def test_invocation_is_the_benchmark_command_without_record() -> None:
    argv = [str(ROOT / "bench" / "warm_workers.py"), "--full", "--record", "--set", "sweep.seed=[0]"]
    assert timings.invocation(argv) == "python bench/warm_workers.py --full --set 'sweep.seed=[0]'"


def test_command_line_checks_and_rewrites(copy: Path) -> None:
    script = copy / "bench" / "timings.py"
    shutil.copy(ROOT / "bench" / "timings.py", script)
    timings.record("pipeline_recipe", 50, root=copy)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)

    checked = run("--check")
    assert checked.returncode == 1 and "stale timing pipeline_recipe" in checked.stdout
    assert run().stdout.splitlines() == ["rewrote docs/guide.md", "rewrote recipes/r.toml"]
    assert run("--check").returncode == 0
    assert run("--record", "pipeline_recipe", "61").returncode == 0
    assert "about 61 s (" in (copy / "docs" / "guide.md").read_text() and run("--check").returncode == 0
