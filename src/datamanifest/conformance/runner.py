"""The runner: each case's request to an implementation (this one in-process, or any
command answering the protocol on stdin/stdout), its answer compared with the expected one
(fixtures/README.md)."""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..errors import MissingDependency
from .answers import answer
from .index import Case, load_cases

#: the exit status of an implementation that does not answer a kind (counted as skipped)
EXIT_UNSUPPORTED = 3


# -- requests and expectations -------------------------------------------------------------------------
def request_and_expected(root: Path, case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    if case.kind in ("parse", "reject"):
        document = (root / case.files[0]).read_text(encoding="utf-8")
        expected = json.loads((root / case.files[1]).read_text(encoding="utf-8"))
        return {"kind": case.kind, "type": case.type or "manifest", "document": document}, expected
    doc = json.loads((root / case.files[0]).read_text(encoding="utf-8"))
    return {"kind": case.kind, **doc["input"]}, doc["expected"]


def _positions(items: list[dict[str, Any]]) -> list[tuple]:
    return [(d.get("code"), d.get("line"), d.get("column")) for d in items]


def compare(kind: str, expected: dict[str, Any], answer: dict[str, Any],
            byte_identity: bool = False) -> str | None:
    """None when ``answer`` matches ``expected``, else a one-line reason.

    ``roundtrip`` answers must be semantically identical, key order included
    (FMT-004); with ``byte_identity`` they must also be the same bytes.
    """
    if kind == "roundtrip":
        from ..spec.canonical import key_orders
        from ..spec.comments import attach

        if "error" in expected or "error" in answer:
            return None if answer == expected else \
                f"answer {json.dumps(answer)} != expected {json.dumps(expected)}"
        text = answer.get("document")
        if not isinstance(text, str):
            return "answer has no document text"
        try:
            got = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            return f"written document is not TOML: {e}"
        want = tomllib.loads(expected["document"])
        if got != want:
            return _first_difference(want, got).replace("normalized", "document", 1)
        if key_orders(got) != key_orders(want):
            return "same values, different key order"
        # FMT-005: each comment still belongs to the same item (spacing aside)
        placed = [(a.kind, a.path, a.text) for a in attach(text)[0]]
        wanted = [(a.kind, a.path, a.text) for a in attach(expected["document"])[0]]
        if placed != wanted:
            return f"comments placed {placed} != expected {wanted}"
        if byte_identity and text != expected["document"]:
            return "same document, different bytes (byte identity requested)"
        return None
    if kind == "parse":
        if answer.get("errors"):
            return f"unexpected errors {_positions(answer['errors'])}"
        got_w = _positions(answer.get("warnings", []))
        want_w = _positions(expected["warnings"])
        if got_w != want_w:
            return f"warnings {got_w} != expected {want_w}"
        want = expected["normalized"] if "normalized" in expected else \
            {"schema": expected["schema"], "datasets": expected["datasets"]}
        if answer.get("normalized") != want:
            return _first_difference(want, answer.get("normalized"))
        return None
    if kind == "reject":
        got = _positions(answer.get("errors", []))
        want = [(expected["code"], expected["line"], expected["column"])]
        return None if got == want else f"errors {got} != expected {want}"
    if answer != expected:
        return f"answer {json.dumps(answer, ensure_ascii=False)} != expected " \
               f"{json.dumps(expected, ensure_ascii=False)}"
    return None


def _first_difference(want: Any, got: Any, path: str = "") -> str:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            if want.get(k, "<absent>") != got.get(k, "<absent>"):
                return _first_difference(want.get(k, "<absent>"), got.get(k, "<absent>"),
                                         f"{path}/{k}")
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got)):
            if a != b:
                return _first_difference(a, b, f"{path}/{i}")
    return f"normalized{path}: got {json.dumps(got, ensure_ascii=False)}, expected " \
           f"{json.dumps(want, ensure_ascii=False)}"


def serve(stdin: TextIO, stdout: TextIO) -> int:
    """Read one request from ``stdin``, write the answer to ``stdout``; return the exit status."""
    try:
        request = json.loads(stdin.read())
    except ValueError as e:  # DIAG-006: a malformed request is a usage error
        print(f"error DM174 bad request: not JSON ({e}); the protocol is in "
              "fixtures/README.md", file=sys.stderr)
        return 2
    try:
        result = answer(request)
    except KeyError:
        return EXIT_UNSUPPORTED
    except MissingDependency as e:  # this installation lacks an extra the case needs
        print(e.render(), file=sys.stderr)
        return EXIT_UNSUPPORTED
    stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


# -- the runner ----------------------------------------------------------------------------------------
@dataclass
class RunResult:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    #: extras this installation lacks for the cases it skipped (DIAG-020)
    missing: set[str] = field(default_factory=set)

    @property
    def line(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
            if self.missing:
                extras = ",".join(sorted(self.missing))
                text += f" (they need pip install 'datamanifest[{extras}]')"
        return text


def run(root: Path, impl: str | None = None, only: set[str] | None = None,
        out: TextIO | None = None, timeout: float = 60.0, byte_identity: bool = False,
        cases: Sequence[str] = ()) -> RunResult:
    """Run every case (of the kinds in ``only``; whose id matches one of the shell-style
    patterns ``cases``, e.g. ``"key/*"`` or ``"manifest/invalid/dup-*"``) against ``impl``
    (a command line; None: this implementation in-process). Prints one line per failure
    and the closing line ``N passed, N failed`` to ``out`` (default: the current
    ``sys.stdout``)."""
    out = out if out is not None else sys.stdout
    result = RunResult()
    argv = shlex.split(impl) if impl else None
    for case in load_cases(root):
        if only and case.kind not in only:
            continue
        if cases and not any(fnmatch.fnmatchcase(case.id, p) for p in cases):
            continue
        request, expected = request_and_expected(root, case)
        if argv is None:
            try:
                got: dict[str, Any] | None = json.loads(json.dumps(answer(request),
                                                                   ensure_ascii=False))
            except MissingDependency as e:
                result.skipped += 1
                result.missing.add(e.extra)
                continue
        else:
            try:
                proc = subprocess.run(argv, input=json.dumps(request, ensure_ascii=False),
                                      capture_output=True, text=True, timeout=timeout)
            except OSError as e:  # no such program: every case would fail alike
                from ..errors import DataManifestError

                raise DataManifestError(f"cannot run the implementation {impl!r}: "
                                        f"{e.strerror or e}", code="DM174",
                                        hint="--impl is a command line answering the "
                                        "protocol of fixtures/README.md on stdin/stdout") from e
            except subprocess.TimeoutExpired as e:
                print(f"FAIL {case.id}: cannot run the implementation: {e}", file=out)
                result.failed += 1
                continue
            if proc.returncode == EXIT_UNSUPPORTED:
                result.skipped += 1
                continue
            if proc.returncode != 0:
                print(f"FAIL {case.id}: exit {proc.returncode}: {proc.stderr.strip()[:200]}",
                      file=out)
                result.failed += 1
                continue
            try:
                got = json.loads(proc.stdout)
            except ValueError:
                print(f"FAIL {case.id}: answer is not JSON: {proc.stdout[:200]!r}", file=out)
                result.failed += 1
                continue
        reason = compare(case.kind, expected, got or {}, byte_identity)
        if reason is None:
            result.passed += 1
        else:
            print(f"FAIL {case.id} [{case.kind}; {', '.join(case.rules)}]: {reason}", file=out)
            result.failed += 1
    print(result.line, file=out)
    return result
