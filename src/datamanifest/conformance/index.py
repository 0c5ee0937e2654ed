"""The suite's index: its cases found in the fixture files, ``fixtures/index.json`` and the
pins of ``fixtures/SHA256SUMS`` (fixtures/README.md)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import DOCUMENT_KINDS, JSON_KINDS

SPEC_VERSION = 1


@dataclass(frozen=True)
class Case:
    """One conformance case: ``id`` (its path without extension), ``kind``, covered ``rules``."""

    id: str
    kind: str
    rules: tuple[str, ...]
    since: int
    files: tuple[str, ...]
    type: str | None = None


def default_fixtures_dir() -> Path | None:
    """The suite this implementation was built with: ``fixtures/`` of the source tree (an
    editable install), else the copy a wheel ships as ``datamanifest/fixtures/``, else
    ``./fixtures`` of the working directory; ``None`` when there is none."""
    here = Path(__file__).resolve().parents[1]  # the datamanifest package
    for candidate in (here.parents[1] / "fixtures", here / "fixtures", Path.cwd() / "fixtures"):
        if (candidate / "index.json").is_file():
            return candidate
    return None


# -- the index -----------------------------------------------------------------------------------
def build_index(root: Path) -> dict[str, Any]:
    """Scan the fixture files under ``root`` into the index document (``fixtures/index.json``)."""
    from ..spec.documents import DOC_TYPES

    cases: list[dict[str, Any]] = []
    for doc_type in DOC_TYPES:
        for sub, kind in zip(("valid", "invalid"), DOCUMENT_KINDS):
            for toml_path in sorted((root / doc_type / sub).glob("*.toml")):
                exp_path = toml_path.with_name(toml_path.stem + ".expected.json")
                exp = json.loads(exp_path.read_text(encoding="utf-8"))
                rules = exp.get("rules") or [exp["rule"]]
                cases.append({
                    "id": f"{doc_type}/{sub}/{toml_path.stem}", "kind": kind, "type": doc_type,
                    "since": SPEC_VERSION, "rules": sorted(set(rules)),
                    "files": [toml_path.relative_to(root).as_posix(),
                              exp_path.relative_to(root).as_posix()],
                })
    for kind in JSON_KINDS:
        for path in sorted((root / kind).glob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            cases.append({"id": f"{kind}/{path.stem}", "kind": kind, "since": SPEC_VERSION,
                          "rules": sorted(set(doc["rules"])),
                          "files": [path.relative_to(root).as_posix()]})
    return {"spec_version": SPEC_VERSION, "count": len(cases), "cases": cases}


def render_index(index: dict[str, Any]) -> str:
    return json.dumps(index, indent=1, ensure_ascii=False) + "\n"


def load_cases(root: Path) -> list[Case]:
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    return [Case(c["id"], c["kind"], tuple(c["rules"]), c["since"], tuple(c["files"]),
                 c.get("type")) for c in index["cases"]]


def checksums(root: Path, overrides: dict[str, str] | None = None) -> str:
    """``sha256sum``-style lines for every fixture file (for pinning a spec version).

    ``overrides`` maps a relative name to the text it is about to have.
    """
    contents: dict[str, bytes] = {}
    for p in root.rglob("*"):
        if p.is_file() and p.name != "SHA256SUMS":
            contents[p.relative_to(root).as_posix()] = p.read_bytes()
    for name, text in (overrides or {}).items():
        contents[name] = text.encode("utf-8")
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in sorted(contents.items()))
