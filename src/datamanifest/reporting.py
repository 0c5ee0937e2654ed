"""Diagnostics rendered for CI systems: GitHub workflow commands and SARIF 2.1.0
(SCHEMA.md DIAG-010, DIAG-011).

The text and JSON forms are :meth:`~datamanifest.errors.Diagnostic.render` and
:meth:`~datamanifest.errors.Diagnostic.as_json` (DIAG-003); this module adds the two forms
that CI services read:

* :func:`github_commands` -- one ``::error``/``::warning`` workflow command per diagnostic,
  which GitHub Actions turns into an annotation on the file's line;
* :func:`sarif_log` -- one SARIF 2.1.0 log (OASIS Static Analysis Results Interchange
  Format), which code-scanning services (GitHub code scanning among them) upload.

Pure: paths are made relative to a given root, nothing is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._version import __version__
from .errors import CODES, Diagnostic

#: where the rules are explained (the code table of SCHEMA.md §9)
SPEC_URL = "https://github.com/datamanifest/datamanifest/blob/main/SCHEMA.md"
SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: the base every artifact URI is relative to (SARIF §3.14.14 originalUriBaseIds)
SRCROOT = "%SRCROOT%"


def display_path(file: str | None, root: str | os.PathLike | None = None) -> str | None:
    """``file`` relative to ``root`` (default: the working directory) when it lies below it,
    with ``/`` separators; otherwise as given."""
    if not file or file.startswith("<"):
        return file
    base = Path(root) if root is not None else Path.cwd()
    p = Path(file)
    try:
        rel = (p if p.is_absolute() else base / p).resolve().relative_to(base.resolve())
    except (ValueError, OSError):
        return p.as_posix()
    return rel.as_posix()


# -- GitHub workflow commands (DIAG-010) --------------------------------------------------------------
def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(d: Diagnostic, root: str | os.PathLike | None = None) -> str:
    """One workflow command: ``::error file=F,line=L,col=C,title=DM010::MESSAGE (HINT)``.

    ``warning`` diagnostics use ``::warning``; ``line``/``col`` are left out when unknown.
    Values are escaped as GitHub Actions requires (``%``, CR, LF; and ``:``, ``,`` in
    properties). SCHEMA.md DIAG-010.
    """
    props = []
    file = display_path(d.file, root)
    if file:
        props.append(f"file={_escape_property(file)}")
    if d.line is not None:
        props.append(f"line={d.line}")
        props.append(f"col={d.column or 1}")
    props.append(f"title={_escape_property(d.code)}")
    text = d.message + (f" ({d.hint})" if d.hint else "")
    level = _GITHUB_LEVELS.get(d.severity, "warning")
    return f"::{level} {','.join(props)}::{_escape_data(text)}"


#: DIAG-010: severity -> workflow command (information, DM181, is a notice)
_GITHUB_LEVELS = {"error": "error", "warning": "warning", "info": "notice"}
#: DIAG-011: severity -> SARIF level
_SARIF_LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def github_commands(diagnostics: Iterable[Diagnostic],
                    root: str | os.PathLike | None = None) -> list[str]:
    """:func:`github_command` of each diagnostic, in order."""
    return [github_command(d, root) for d in diagnostics]


# -- SARIF 2.1.0 (DIAG-011) ---------------------------------------------------------------------------------
def _rule_name(title: str) -> str:
    """A SARIF ``reportingDescriptor.name``: the title in PascalCase, letters and digits."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Diagnostic"


def _rule(code: str) -> dict[str, Any]:
    rule_id, severity, title = CODES.get(code, ("", "error", code))
    return {
        "id": code,
        "name": _rule_name(title),
        "shortDescription": {"text": title},
        "helpUri": f"{SPEC_URL}#9-diagnostics",
        "defaultConfiguration": {"level": _SARIF_LEVELS.get(severity, "warning")},
        "properties": {"rule": rule_id},
    }


def _uri(path: str) -> str:
    return quote(path, safe="/:@!$&'()*+,;=-._~")


def sarif_log(diagnostics: Sequence[Diagnostic], root: str | os.PathLike | None = None, *,
              exit_code: int | None = None) -> dict[str, Any]:
    """The diagnostics as one SARIF 2.1.0 log with one run (SCHEMA.md DIAG-011).

    Parameters
    ----------
    diagnostics
        What ``check`` found, in order.
    root
        The folder artifact URIs are relative to (``%SRCROOT%``; default: the working
        directory). A file outside it gets an absolute ``file://`` URI.
    exit_code
        The exit status of the run, recorded in ``invocations`` when given.

    Returns
    -------
    dict
        The log: ``tool.driver.rules`` holds one rule per code used (``id`` = ``DM###``,
        its SCHEMA.md rule ID in ``properties.rule``); each result has ``ruleId``,
        ``ruleIndex``, ``level`` (``error``/``warning``), ``message.text`` (message and
        hint) and, when the file is known, one physical location whose region is the
        1-based line and column; columns count Unicode code points
        (``columnKind`` ``unicodeCodePoints``, DIAG-001).
    """
    base = Path(root) if root is not None else Path.cwd()
    codes = sorted({d.code for d in diagnostics})
    index = {c: i for i, c in enumerate(codes)}
    artifacts: list[dict[str, Any]] = []
    artifact_index: dict[str, int] = {}
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVELS.get(d.severity, "warning"),
            "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
        }
        if d.path:
            result["properties"] = {"jsonPath": list(d.path)}
        if d.file and not d.file.startswith("<"):
            shown = display_path(d.file, base)
            if shown is not None and not Path(shown).is_absolute():
                location: dict[str, Any] = {"uri": _uri(shown), "uriBaseId": SRCROOT}
            else:
                location = {"uri": Path(d.file).resolve().as_uri()}
            key = location["uri"]
            if key not in artifact_index:
                artifact_index[key] = len(artifacts)
                artifacts.append({"location": dict(location)})
            location["index"] = artifact_index[key]
            physical: dict[str, Any] = {"artifactLocation": location}
            if d.line is not None:
                physical["region"] = {"startLine": d.line, "startColumn": d.column or 1}
            result["locations"] = [{"physicalLocation": physical}]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "datamanifest",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": SPEC_URL,
            "rules": [_rule(c) for c in codes],
        }},
        "originalUriBaseIds": {SRCROOT: {"uri": base.resolve().as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "artifacts": artifacts,
        "results": results,
    }
    if exit_code is not None:
        run["invocations"] = [{"executionSuccessful": exit_code in (0, 1),
                               "exitCode": exit_code}]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
