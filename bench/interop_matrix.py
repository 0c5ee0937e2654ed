"""The interop table of issue 22: every file of the matrix (tests/interop.py: real files from
packages plus generated ones) through every reader of our exports, each compared with
``xarray.open_dataset`` of the file.

    PYTHONPATH=src python bench/interop_matrix.py [--reader NAME ...] [--case ID ...] [-v]

Prints, per reader, how many files read ``identical``, with ``wrong values``, or ``does not
open``; with ``-v`` also each case that is not identical and why. The test suite asserts the
same outcomes case by case (tests/test_interop.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import interop  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reader", action="append", help="only these readers")
    p.add_argument("--case", action="append", help="only these cases")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    readers = a.reader or list(interop.READERS)
    cases = [c for c in interop.cases() if not a.case or c.id in a.case]
    counts = {r: Counter() for r in readers}
    details = []
    start = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            work = Path(tmp) / case.id
            for r in readers:
                try:
                    kind, why = interop.outcome(case, r, work)
                except BaseException as e:  # a skip: the file cannot be had here
                    kind, why = "skipped", f"{type(e).__name__}: {e}"
                counts[r][kind] += 1
                if kind != "identical":
                    details.append((r, case.id, kind, why))
    print(f"| reader ({len(cases)} files) | identical | as xarray's own round trip | "
          "wrong values | does not open |")
    print("|---|---|---|---|---|")
    for r in readers:
        c = counts[r]
        extra = f" ({c['skipped']} skipped)" if c["skipped"] else ""
        like = c["as xarray's round trip"]
        print(f"| {r}{extra} | {c['identical']} | {like} | "
              f"{c['wrong values']} | {c['does not open']} |")
    print(f"\nCPU {time.process_time() - start:.1f} s")
    if a.verbose:
        for r, cid, kind, why in details:
            print(f"\n[{r}] {cid}: {kind}\n  {why}")


if __name__ == "__main__":
    main()
