import subprocess
import sys

from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.pipeline import PipelineConfig, run_pipeline
from ssnas.reporting import InMemoryReporter
from tests.conftest import TINY_SPACE


def test_pipeline_chains_search_pretrain_finetune(tiny_features):
    config = PipelineConfig(
        space=TINY_SPACE,
        search=SearchConfig(min_steps=0, epochs=1, batch_size=32),
        views=ViewConfig(policy="instance"),
        pretrain=PretrainConfig(min_steps=0, epochs=1, batch_size=32),
        finetune=FinetuneConfig(min_steps=0, epochs=1, batch_size=32, label_ratio=0.5),
        runtime=Runtime(seed=0, device="cpu"),
    )
    reporter = InMemoryReporter()
    result = run_pipeline(tiny_features, config, reporter)
    assert result.genotype == result.search.genotype
    assert result.pretrain is not None and result.finetune.labeled == 96
    # the pretrain and fine-tune stages trained the searched genotype
    assert [g for _, _, g in reporter.genotypes][-2:] == [result.genotype, result.genotype]


def test_python_dash_m_ssnas_runs_the_demo_and_prints_the_table():
    done = subprocess.run([sys.executable, "-m", "ssnas", "--epochs", "1", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "found genotype:" in out and "cell0 = " in out and "head = concat(cell0, cell1)" in out
    assert "similarity to bmnas-mmimdb:" in out and "recovery" in out
    test_row = next(line for line in out.splitlines() if line.startswith("test "))
    assert len(test_row.split()) == 5 and all(0.0 <= float(v) <= 1.0 for v in test_row.split()[1:])
    assert "search" in done.stderr and "finetune" in done.stderr  # the progress line


def test_python_dash_m_ssnas_rejects_a_bad_label_ratio():
    done = subprocess.run([sys.executable, "-m", "ssnas", "--label-ratio", "2"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["Error: finetune.label_ratio: 2.0 is out of range (0, 1]"]


def test_console_progress_into_a_file_writes_a_line_per_tenth(tmp_path):
    from ssnas.reporting import ConsoleReporter

    with open(tmp_path / "log.txt", "w") as stream:
        reporter = ConsoleReporter(stream=stream)
        for step in range(1, 101):
            reporter.progress("search", step, 100, loss=1.0 / step)
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert len(lines) == 10 and lines[-1] == "search    [########################] 100/100  loss 0.0100"
