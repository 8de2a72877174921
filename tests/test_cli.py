import h5py
from click.testing import CliRunner

from ssnas.cli import main


def test_every_command_has_help_text():
    runner = CliRunner()
    for name, command in main.commands.items():
        assert command.help, name
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_baselines_lists_the_bundled_bmnas_genotype():
    result = CliRunner().invoke(main, ["baselines"])
    assert result.exit_code == 0
    assert "bmnas-mmimdb" in result.output
    assert "concat_fc(text[0], image[2])" in result.output and "linear_glu" in result.output


def test_features_writes_a_cache_that_reads_back(tmp_path):
    out = tmp_path / "synthetic.h5"
    result = CliRunner().invoke(main, ["features", "synthetic", str(out)])
    assert result.exit_code == 0, result.output
    assert "3072 samples" in result.output and "image[0], image[1], image[2], image[3], text[0], text[1]" in result.output
    with h5py.File(out) as f:
        assert f.attrs["format"] == "ssnas-features/1"


def test_features_of_a_missing_file_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["features", "features", str(tmp_path / "out.h5"), "--path", str(tmp_path / "nope.h5")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {tmp_path / 'nope.h5'}: file not found"]


def test_every_command_is_documented_in_docs_cli():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    missing = [name for name in main.commands if f"## `ssnas {name}`" not in text]
    assert missing == []
