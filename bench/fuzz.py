"""Fuzz every document type (issue 13, design/2026-12-02-reliability.md).

Hypothesis mutates the conformance suite's valid documents (byte and structure level) and
datamanifest.testing.fuzz.examine judges each: `check` (text and JSON), `format`, `migrate`
and the Python loaders must raise nothing but coded errors, every diagnostic must carry a
code and a line:column inside the file, and `format` output must re-parse to the same
model. Prints, per type, the documents tried, the problems found (goal 0) and the first
few of them with the input that caused them.

    .venv/bin/python bench/fuzz.py                  # 10,000 documents per type
    .venv/bin/python bench/fuzz.py --examples 500 --only manifest,state
"""

from __future__ import annotations

import argparse
import sys
import time

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from datamanifest.testing import fuzz


def run_type(doc_type: str, examples: int) -> tuple[int, list[tuple[str, str]]]:
    seeds = fuzz.seeds()[doc_type]
    tried = [0]
    found: list[tuple[str, str]] = []

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(seeds), st.data())
    def one(seed_text, data):
        text = fuzz.mutate(data, doc_type, seed_text)
        tried[0] += 1
        for problem in fuzz.examine(doc_type, text):
            found.append((problem, text))

    one()
    return tried[0], found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10_000, help="documents per type")
    ap.add_argument("--only", default=",".join(fuzz.TYPES))
    args = ap.parse_args()
    total_problems = 0
    print(f"{'type':16} {'seeds':>5} {'tried':>7} {'problems':>8} {'seconds':>8}")
    for doc_type in args.only.split(","):
        t0 = time.perf_counter()
        tried, found = run_type(doc_type, args.examples)
        total_problems += len(found)
        print(f"{doc_type:16} {len(fuzz.seeds()[doc_type]):5} {tried:7} {len(found):8} "
              f"{time.perf_counter() - t0:8.0f}", flush=True)
        seen = set()
        for problem, text in found:
            head = problem.splitlines()[0][:120]
            if head in seen or len(seen) >= 5:
                continue
            seen.add(head)
            print(f"    {head}\n      input: {text[:200]!r}")
    return 1 if total_problems else 0


if __name__ == "__main__":
    sys.exit(main())
