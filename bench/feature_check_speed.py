"""How long the whole check of a features file takes, and how much memory it adds, on a file of about 1 GB.

Builds an ssnas-features/1 file of float16 levels (two modalities, four levels, 23 labels) in a
temporary folder, then runs `check_feature_file` on it in a fresh process, twice: first with the
file dropped from the page cache (posix_fadvise DONTNEED, so the bytes come from disk), then again
with it cached. Peak RSS increase is the checking process's peak minus its size after imports:
what the check itself holds, which the 64 MB row blocks bound whatever the file's size (Linux:
it reads VmHWM from /proc). With `--record`, the two check times become the ones the docs quote
(bench/timings.py).

    python bench/feature_check_speed.py [--gb 1.0] [--dir DIR] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timings  # noqa: E402

# Per row: what a frozen backbone might give, e.g. a 4x4 map and a vector, a sequence and a vector.
LEVELS = {"image": [(256, 4, 4), (512,)], "text": [(128, 16), (256,)]}
CLASSES = 23
WRITE_ROWS = 4096  # rows written at a time, so that building the file holds little memory

# Peak RSS from VmHWM, which exec resets (ru_maxrss would keep this script's own peak, the build's).
CHILD = """
import json, re, sys, time
from pathlib import Path
from ssnas.data.feature_check import SplitNeeds, check_feature_file

def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))

before = peak_kb()
began = time.perf_counter()
warnings = check_feature_file(sys.argv[1], SplitNeeds({"train": 1, "dev": 1}, frozenset({"train", "dev"})))
seconds = time.perf_counter() - began
print(json.dumps({"seconds": seconds, "rss_increase_mb": (peak_kb() - before) / 1024, "warnings": len(warnings)}))
"""


def build(path: Path, gigabytes: float) -> int:
    """Write the file; return its number of rows."""
    per_row = sum(int(np.prod(shape)) for shapes in LEVELS.values() for shape in shapes) * 2
    n = max(10, int(gigabytes * 1e9 / per_row))
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "ssnas-features/1"
        f.attrs["modalities"] = json.dumps(list(LEVELS))
        f.attrs["label_names"] = json.dumps([f"class_{k}" for k in range(CLASSES)])
        for name, shapes in LEVELS.items():
            for k, shape in enumerate(shapes):
                dataset = f.create_dataset(f"modalities/{name}/level_{k}", shape=(n, *shape), dtype=np.float16)
                block = rng.standard_normal((WRITE_ROWS, *shape), dtype=np.float32).astype(np.float16)
                for start in range(0, n, WRITE_ROWS):
                    stop = min(n, start + WRITE_ROWS)
                    dataset[start:stop] = block[: stop - start]
        f["labels"] = (rng.random((n, CLASSES)) < 0.2).astype(np.uint8)
        order = rng.permutation(n)
        cut = [int(n * 0.7), int(n * 0.85)]
        for split, rows in zip(("train", "dev", "test"), np.split(order, cut), strict=True):
            f[f"splits/{split}"] = np.sort(rows).astype(np.int64)
    return n


def drop_from_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages, so that the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(path: Path) -> dict:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                          cwd=root)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the file to build, in GB (1e9 bytes)")
    parser.add_argument("--dir", type=Path, default=None, help="where to build it (default: a temporary folder)")
    parser.add_argument("--record", action="store_true", help="store both check times and rewrite the docs")
    args = parser.parse_args()
    if args.record and args.gb != 1:
        parser.error("--record stores the figures the docs quote, for a 1 GB file: --gb 1 or no --gb")
    figures = {}
    folder = Path(tempfile.mkdtemp(prefix="ssnas-check-", dir=args.dir))
    try:
        path = folder / "features.h5"
        rows = build(path, args.gb)
        size_mb = path.stat().st_size / 1e6
        print(f"feature check, {rows} rows x {sum(len(s) for s in LEVELS.values())} float16 levels + "
              f"{CLASSES} labels, {platform.machine()}, {os.cpu_count()} CPUs")
        print(f"{'cache':<8}{'file MB':>9}{'check s':>9}{'MB/s':>8}{'peak RSS +MB':>14}")
        for cache in ("cold", "warm"):
            if cache == "cold":
                drop_from_cache(path)
            result = measure(path)
            figures[f"feature_check_{cache}"] = (result["seconds"], "s")
            print(f"{cache:<8}{size_mb:>9.0f}{result['seconds']:>9.2f}{size_mb / result['seconds']:>8.0f}"
                  f"{result['rss_increase_mb']:>14.0f}")
    finally:
        shutil.rmtree(folder)
    if args.record:
        timings.publish(figures)


if __name__ == "__main__":
    main()
