"""Every command keeps the one exit status policy (ssnas.exit_status, docs/cli.md#exit-status): 0 done, 2 the
user's to fix (a bad option, recipe or file; a run, baseline or file not found), 3 a bug. Nothing here trains:
the commands that would (run, tune, demo, resume, rerun) are only refused. The other two codes need real runs
and are tested where those run: 1 (a run did not finish) in tests/test_e2e_runs.py, 130 (Ctrl-C of a
foreground `ssnas run`) in tests/test_daemon.py."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ssnas.baselines import load_baseline
from ssnas.cli import COMMANDS
from ssnas.commands import inspect as inspect_commands
from ssnas.commands.common import RunArgument
from ssnas.commands.lazy import load_command
from ssnas.exit_status import BUG, INTERNAL, OK, USAGE, interrupted
from tests.e2e import RECIPES
from tests.test_cli_launch import invoke, make_runs

UNKNOWN = "zzzz"  # no run id starts with it: ids are hex

# Per command: arguments (placeholders filled by `places`) and the exit status they must end with.
CASES: dict[str, list[tuple[list[str], int]]] = {
    "arch": [(["arch", UNKNOWN], USAGE), (["arch", "{run}"], USAGE), (["arch", "{run}", "--epoch", "x"], USAGE)],
    "baselines": [(["baselines"], OK), (["baselines", "extra"], USAGE)],
    "compare": [(["compare", "{run}", "{other}"], OK), (["compare", "{run}", UNKNOWN], USAGE),
                (["compare", "{run}"], USAGE)],
    "demo": [(["demo", "--label-ratio", "x"], USAGE), (["demo", "--epochs", "many"], USAGE)],
    "diff": [(["diff", "{run}", "--baseline", "bmnas-mmimdb"], OK), (["diff", UNKNOWN], USAGE),
             (["diff", "{run}", "--baseline", "nope"], USAGE), (["diff", "{other}"], USAGE)],
    "export": [(["export", "{run}", "--to", "{tmp}/export"], OK), (["export", UNKNOWN], USAGE),
               (["export", "{run}", "--to", "{unknown_key}/export"], USAGE)],
    "features": [(["features", "dataset", "nope", "{tmp}/f.h5"], USAGE),
                 (["features", "from-arrays", "{tmp}/f.h5", "--view", "image={missing}"], USAGE)],
    "kill": [(["kill", UNKNOWN], USAGE), (["kill"], USAGE)],
    "metrics": [(["metrics", "{run}"], OK), (["metrics", UNKNOWN], USAGE),
                (["metrics", "{run}", "--key", "nope"], USAGE)],
    "plugins": [(["plugins"], OK), (["plugins", "--bogus"], USAGE)],
    "queue": [(["queue"], OK), (["queue", "--max-parallel", "0"], USAGE), (["queue", "--cancel", UNKNOWN], USAGE)],
    "recipe": [(["recipe", "show", "{base}"], OK), (["recipe", "show", "{missing}"], USAGE),
               (["recipe", "show", "{unknown_key}"], USAGE)],
    "report": [(["report", "nogroup"], USAGE), (["report"], USAGE)],
    "rerun": [(["rerun", UNKNOWN], USAGE), (["rerun"], USAGE)],
    "resume": [(["resume", UNKNOWN], USAGE), (["resume", "{run}"], USAGE)],
    "rm": [(["rm", "{other}", "--yes"], OK), (["rm", UNKNOWN, "--yes"], USAGE)],
    "run": [(["run", "{missing}"], USAGE), (["run", "{unknown_key}"], USAGE),
            (["run", "{base}", "--on-interrupt", "never"], USAGE)],
    "runs": [(["runs"], OK), (["runs", "--where", "seed >"], USAGE), (["runs", "--limit", "-1"], USAGE)],
    "show": [(["show", "{run}"], OK), (["show", UNKNOWN], USAGE)],
    "tag": [(["tag", "{run}", "paper"], OK), (["tag", UNKNOWN, "paper"], USAGE), (["tag", "{run}", "a\x1bb"], USAGE)],
    "tui": [(["tui", "--poll", "0"], USAGE), (["tui", "--recipes", "{missing}"], USAGE)],
    "tune": [(["tune", "{missing}"], USAGE), (["tune", "{unknown_key}"], USAGE),
             (["tune", "{base}", "--trials", "0"], USAGE)],
}


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    """What the placeholders stand for: a runs folder of two finished runs (`run` has a genotype, `other` none),
    the bundled base recipe, a recipe with an unknown key and a path that does not exist."""
    registry, (run, other) = make_runs(tmp_path)
    registry.add_genotype(run, 0, 0, load_baseline("bmnas-mmimdb").to_json())
    registry.close()
    (tmp_path / "unknown_key.toml").write_text(f'extends = "{RECIPES / "base.toml"}"\n[run]\nspeed = 3\n')
    return {"tmp": str(tmp_path), "run": run[:6], "other": other[:6], "base": str(RECIPES / "base.toml"),
            "missing": str(tmp_path / "missing"), "unknown_key": str(tmp_path / "unknown_key.toml")}


def takes_a_run(name: str) -> bool:
    """Whether the command has a RUN argument, which can name a run that does not exist."""
    return any(isinstance(param.type, RunArgument) for param in load_command(name, COMMANDS[name]).params)


def test_every_command_has_a_user_error_and_every_run_argument_a_not_found_case():
    assert set(CASES) == set(COMMANDS), "a command without exit status cases: add its row to CASES"
    for name, cases in CASES.items():
        assert any(code == USAGE for _, code in cases), name
        if takes_a_run(name):
            assert any(UNKNOWN in args and code == USAGE for args, code in cases), name


@pytest.mark.parametrize(("args", "code"), [pytest.param(args, code, id=ascii(" ".join(args)))
                                            for cases in CASES.values() for args, code in cases])
def test_exit_status(places, args, code):
    result = invoke(places["tmp"], *(arg.format(**places) for arg in args))
    assert result.exit_code == code, result.output
    if code == USAGE:  # one `Error:` line (after click's usage lines), never a traceback
        assert "Traceback" not in result.output
        assert result.output.strip().splitlines()[-1].startswith("Error: "), result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_of_every_command_exits_ok(tmp_path, name):
    assert invoke(tmp_path, name, "--help").exit_code == OK


@pytest.mark.parametrize("args", [["nope"], ["--bogus", "runs"]])
def test_an_unknown_command_or_group_option_is_a_usage_error(tmp_path, args):
    assert invoke(tmp_path, *args).exit_code == USAGE


def test_an_unexpected_exception_is_a_bug_with_its_traceback(places, monkeypatch):
    def broken(service):
        raise RuntimeError("boom\non two lines")

    monkeypatch.setattr(inspect_commands, "open_registry", broken)
    result = invoke(places["tmp"], "runs")
    assert result.exit_code == INTERNAL
    assert "Traceback (most recent call last)" in result.stderr and "in broken" in result.stderr
    assert result.stderr.splitlines()[-1] == f"Error: {BUG}: RuntimeError: boom on two lines"


def test_ctrl_c_in_any_command_is_an_interruption(places, monkeypatch):
    def interrupt(service):
        raise KeyboardInterrupt

    monkeypatch.setattr(inspect_commands, "open_registry", interrupt)
    result = invoke(places["tmp"], "show", places["run"])
    assert result.exit_code == interrupted(signal.SIGINT) == 130
    assert result.stderr.endswith("Aborted!\n")


def test_a_dashboard_that_crashed_is_a_bug(tmp_path, monkeypatch):
    """Textual shows the traceback of an exception in the app and returns; the command must not exit 0."""

    class Crashed:
        return_code = 1

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def run(self) -> None:
            pass

    monkeypatch.setattr("tui.app.SsnasApp", Crashed)
    result = invoke(tmp_path, "tui")
    assert result.exit_code == INTERNAL
    assert result.stderr.splitlines()[-1].startswith("Error: internal error")
