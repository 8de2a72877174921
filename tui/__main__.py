"""`python -m tui [--runs DIR] [--poll S] [--recipes DIR]`: the dashboard without the CLI (as `ssnas tui`)."""

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tui", description="The ssnas dashboard over a runs folder.")
    parser.add_argument("--runs", default=os.environ.get("SSNAS_RUNS") or "runs", help="the runs folder")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between registry reads")
    parser.add_argument("--recipes", type=Path, help="recipes the launch dialog offers (default ./recipes)")
    args = parser.parse_args(argv)
    from tui.app import SsnasApp  # after parsing: --help stays instant

    SsnasApp(Path(args.runs), args.recipes, poll_interval=max(0.1, args.poll)).run()


if __name__ == "__main__":
    main()
