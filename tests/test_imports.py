"""Commands that do not train must start without torch (STYLE.md): checked in a fresh interpreter."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "transformers", "tensorboard", "textual")


@pytest.mark.parametrize(
    "module",
    ["ssnas", "ssnas.errors", "ssnas.nas.genotype", "ssnas.nas.derive", "ssnas.nas.vocabulary", "ssnas.nas.space",
     "ssnas.baselines", "ssnas.stages.config", "ssnas.__main__"],
)
def test_light_modules_import_no_heavy_library(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_demo_help_imports_no_torch():
    code = (
        "import sys\n"
        "from ssnas.__main__ import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: python -m ssnas" in done.stdout
    assert done.stderr.strip() == "False"
