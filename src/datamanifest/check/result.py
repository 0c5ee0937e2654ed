"""The outcome of checking a document and the collector of its diagnostics (SCHEMA.md §9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic
from ..spec._locate import Locator
from ..spec.manifest import Manifest

_TOML_TYPES = {
    str: "a string", int: "an integer", float: "a float", bool: "a boolean",
    list: "an array", dict: "a table",
}
_SCHEMA_TYPES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "array": "an array", "object": "a table",
}


def wanted(err: Any) -> str:
    """The TOML type names a JSON Schema ``type`` error asked for: "a string or a table"."""
    want = err.validator_value
    return " or ".join(_SCHEMA_TYPES.get(w, w) for w in ([want] if isinstance(want, str) else want))


def toml_type(value: Any) -> str:
    for t, name in _TOML_TYPES.items():
        if type(value) is t:
            return name
    return "a date-time" if hasattr(value, "isoformat") else type(value).__name__


@dataclass
class CheckResult:
    """The outcome of checking one document.

    ``data`` is the parsed TOML (``None`` on a syntax error); ``manifest`` the
    model (``None`` when any error was found); ``diagnostics`` sorted by position.
    """

    file: str | None
    data: dict[str, Any] | None = None
    manifest: Manifest | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    doc_type: str = "manifest"

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


class Collector:
    def __init__(self, file: str | None, text: str | None) -> None:
        self.file = file
        self.loc = Locator(text)
        self.items: dict[tuple[str, tuple], Diagnostic] = {}

    def add(self, code: str, path: tuple, message: str, hint: str | None = None,
            *, at_key: bool = False, severity: str = "") -> None:
        if (code, path) in self.items:
            return
        line, col = self.loc.find(path, value=not at_key)
        self.items[(code, path)] = Diagnostic(
            code, message, self.file, line, col, path, hint, severity
        )

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items.values(), key=lambda d: (d.line or 0, d.column or 0, d.code))
