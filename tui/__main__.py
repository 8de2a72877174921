"""`python -m tui [--poll S] [--recipes DIR]`: the same as `ssnas tui` (runs folder from $SSNAS_RUNS or ./runs)."""

import sys

from ssnas.cli import main

if __name__ == "__main__":
    sys.exit(main(["tui", *sys.argv[1:]], prog_name="python -m tui"))
