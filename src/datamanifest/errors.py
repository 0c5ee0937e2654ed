"""The error hierarchy and the stable diagnostic codes (SCHEMA.md §9 "Diagnostics").

Every problem datamanifest reports has a stable code ``DM###``. Problems found
in documents are :class:`Diagnostic` values (data: code, severity, file, line,
column, JSON path, message, hint); problems that stop an operation are raised
as :class:`DataManifestError` subclasses carrying the same fields. The CLI
renders both the same way and never shows a traceback for them.

The code table below is normative: codes are never reused or renumbered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def redact_text(text: str) -> str:
    """:func:`datamanifest.spec.secrets.redact_text` (SEC-002), its module (and
    ``urllib.parse``) imported on first use: a command that builds no error skips it."""
    from .spec.secrets import redact_text as redact

    return redact(text)


#: code -> (rule ID in SCHEMA.md, default severity, short title)
CODES: dict[str, tuple[str, str, str]] = {
    # documents: syntax and structure
    "DM001": ("DIAG-002", "error", "TOML syntax error"),
    "DM002": ("DISC-003", "error", "file cannot be read"),
    "DM003": ("DISC-002", "error", "no manifest found"),
    "DM004": ("VER-003", "error", "unsupported _META.schema"),
    "DM005": ("MAN-002", "error", "top-level key is not a table"),
    "DM007": ("MIG-001", "warning", "manifest without _META.schema"),
    "DM010": ("MAN-011", "error", "unknown field"),
    "DM011": ("MAN-010", "error", "field has the wrong type"),
    "DM012": ("MAN-021", "error", "uri and uris are mutually exclusive"),
    "DM013": ("MAN-022", "warning", "dataset has no source"),
    "DM014": ("MAN-040", "error", "malformed binding"),
    "DM015": ("MAN-023", "error", "empty or invalid URI"),
    "DM016": ("MAN-027", "error", "virtual or concat_dim where they do not apply"),
    "DM175": ("MAN-007", "warning", "unknown table resembling a reserved one"),
    # checksums
    "DM020": ("SUM-001", "error", "malformed checksum"),
    "DM021": ("SUM-002", "error", "unknown checksum algorithm"),
    "DM022": ("SUM-005", "warning", "legacy sha256 field"),
    "DM023": ("SUM-006", "error", "checksum and sha256 disagree"),
    "DM024": ("SUM-004", "warning", "bare hexadecimal checksum"),
    # keys and paths
    "DM030": ("KEY-004", "error", "unsafe key"),
    "DM031": ("KEY-005", "error", "cannot derive a safe key from the URI"),
    "DM032": ("STO-004", "error", "unsafe storage_path"),
    "DM033": ("KEY-006", "error", "two datasets share one key"),
    # references between datasets
    "DM040": ("MAN-031", "error", "requires names an unknown dataset"),
    "DM041": ("MAN-032", "error", "requires forms a cycle"),
    "DM042": ("MAN-050", "error", "ambiguous identifier"),
    # legacy and options
    "DM050": ("MAN-060", "warning", "deprecated legacy field"),
    "DM051": ("MAN-026", "error", "extract needs a known archive format"),
    "DM060": ("STO-003", "error", "unknown $ symbol"),
    "DM061": ("RES-002", "error", "storage setting of the wrong type"),
    # operations
    "DM070": ("FET-004", "error", "checksum mismatch"),
    "DM071": ("FET-010", "error", "download failed"),
    "DM072": ("FET-001", "error", "unsupported URI scheme"),
    "DM073": ("FET-020", "error", "unsafe archive member"),
    "DM074": ("FET-011", "error", "source not found"),
    "DM075": ("LCK-006", "error", "lock wait timed out"),
    "DM076": ("MAN-051", "error", "no dataset with that identifier"),
    "DM077": ("MAN-050", "error", "identifier matches several datasets"),
    "DM078": ("STO-010", "error", "dataset is not present"),
    "DM079": ("FET-002", "error", "nothing to fetch from"),
    "DM080": ("FET-021", "error", "archive cannot be read"),
    "DM081": ("FET-003", "error", "dataset blocked by a failed requirement"),
    "DM082": ("LAD-001", "error", "a binding cannot be imported"),
    "DM085": ("FET-006", "error", "not present, and offline"),
    "DM086": ("LAD-023", "error", "a loader's library is not installed"),
    "DM087": ("LAD-012", "error", "no loader for the dataset"),
    "DM088": ("FET-017", "error", "TLS certificate not verified"),
    "DM089": ("FET-018", "error", "redirect to a refused scheme"),
    "DM095": ("FET-022", "error", "archive larger than max_extract_bytes"),
    "DM096": ("STO-014", "error", "store path leaves the store through a symbolic link"),
    "DM083": ("LAD-020", "error", "a fetcher failed"),
    "DM084": ("LAD-021", "error", "a fetcher wrote nothing"),
    "DM090": ("STA-006", "error", "state file cannot be read"),
    "DM091": ("MAN-012", "error", "refused: errors in what it depends on"),
    "DM092": ("STA-002", "error", "malformed state record"),
    "DM093": ("STA-009", "warning", "legacy state schema"),
    "DM094": ("FMT-006", "error", "a comment that belongs to nothing"),
    # parameter hash and shell templates
    "DM100": ("PAR-003", "error", "parameter value without canonical form"),
    "DM101": ("SH-004", "error", "unknown variable in a shell template"),
    "DM102": ("SH-001", "error", "malformed shell template"),
    "DM110": ("SC-001", "error", "malformed config sidecar"),
    "DM111": ("SC-003", "error", "sidecar hash does not match its key table"),
    "DM112": ("SC-010", "error", "malformed metadata sidecar"),
    "DM113": ("PRD-004", "error", "a function that cannot be a producer as declared"),
    "DM114": ("PRD-012", "error", "a format that cannot be written or read here"),
    "DM115": ("PRD-020", "error", "produced dataset is not present"),
    "DM116": ("PRD-005", "error", "two producers claim one cachetype and version"),
    "DM130": ("MNT-011", "error", "empty selection"),
    "DM131": ("MNT-020", "error", "object busy: a live writer holds its lock"),
    "DM132": ("MNT-004", "error", "protected object"),
    "DM133": ("MNT-023", "error", "destination exists"),
    "DM134": ("MNT-001", "error", "no object with that id"),
    "DM135": ("SYNC-001", "error", "far store cannot be resolved"),
    "DM136": ("MNT-012", "error", "malformed age or size"),
    "DM137": ("SYNC-003", "error", "transfer failed"),
    # authoring
    "DM140": ("AUT-001", "error", "a manifest already exists there"),
    "DM141": ("AUT-004", "error", "the dataset name is taken"),
    "DM143": ("AUT-011", "error", "malformed import source"),
    "DM144": ("AUT-011", "warning", "a digest that cannot be imported as a checksum"),
    # chunk manifests
    "DM150": ("CHK-001", "error", "malformed chunk manifest"),
    "DM151": ("CHK-006", "error", "a chunk reference that does not fit its array or sources"),
    "DM152": ("CHK-011", "error", "a referenced source changed"),
    "DM153": ("CHK-021", "error", "a filter without a codec"),
    "DM154": ("CHK-024", "error", "sources that cannot be concatenated"),
    "DM155": ("CHK-008", "error", "chunk manifest checksum mismatch"),
    # appends
    "DM160": ("APP-001", "error", "malformed append configuration"),
    "DM161": ("APP-012", "error", "the slice's variables differ from the target's"),
    "DM162": ("APP-012", "error", "dimensions or lengths differ"),
    "DM163": ("APP-012", "error", "data type, encoding or fixed values differ"),
    "DM164": ("APP-012", "error", "append labels do not continue the target"),
    "DM165": ("APP-012", "error", "chunks differ from the target's"),
    "DM166": ("APP-024", "error", "the target changed under a pending transaction"),
    "DM167": ("APP-010", "error", "the target cannot be read as a Zarr group"),
    "DM190": ("APP-040", "error", "a slice did not arrive complete within slice_polling.timeout"),
    "DM191": ("APP-041", "error", "slice_source cannot be imported or failed"),
    "DM171": ("APP-015", "error", "the append target is not a Zarr store, an empty folder or absent"),
    "DM172": ("LCK-008", "error", "interrupted"),
    "DM173": ("STO-015", "error", "an output path that cannot be written or replaced"),
    "DM174": ("DIAG-006", "error", "a malformed command line"),
    # trust and secrets (SCHEMA.md §27)
    "DM180": ("TRU-005", "error", "the manifest is not trusted to run code or write outside the "
              "project"),
    "DM181": ("TRU-007", "info", "an entry that needs trust"),
    "DM182": ("STO-018", "error", "a file or folder that datamanifest did not publish is in the way"),
    "DM183": ("SEC-003", "warning", "a password or token in a URI"),
    "DM184": ("TRU-006", "error", "the trust record cannot be written"),
    "DM120": ("TREE-006", "error", "a folder that has no tree checksum"),
    "DM121": ("TREE-007", "error", "checksum kind does not fit the dataset"),
    "DM122": ("TREE-014", "error", "verify found differences"),
    # installation
    "DM170": ("DIAG-020", "error", "an optional library is not installed"),
}


def rule_of(code: str) -> str:
    """Return the SCHEMA.md rule ID a diagnostic code implements (e.g. ``"MAN-011"``)."""
    return CODES[code][0]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a document (SCHEMA.md §9, DIAG-001).

    Parameters
    ----------
    code : str
        The stable code, ``DM###`` (SCHEMA.md §9's table).
    message : str
        What is wrong, credentials redacted (SEC-002).
    file : str, optional
        The document's path or label.
    line, column : int, optional
        1-based position of the offending key or value (columns count Unicode code points).
    path : tuple of str and int
        The JSON path of the offending value inside the parsed document.
    hint : str, optional
        How to fix it.
    severity : str
        ``error``, ``warning`` or ``info``; default: the code's own (``CODES``).
    """

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: tuple[str | int, ...] = ()
    hint: str | None = None
    severity: str = field(default="")

    def __post_init__(self) -> None:
        if not self.severity:
            object.__setattr__(self, "severity", CODES[self.code][1])
        # SEC-002: a credential in a URI never reaches a message, a hint or a JSON output
        object.__setattr__(self, "message", redact_text(self.message))
        if self.hint:
            object.__setattr__(self, "hint", redact_text(self.hint))

    @property
    def rule(self) -> str:
        """The SCHEMA.md rule ID this diagnostic's code enforces (e.g. ``MAN-031``)."""
        return rule_of(self.code)

    def render(self) -> str:
        """``FILE:LINE:COL: severity DM### message (hint)`` (DIAG-003); without a file,
        ``LINE:COL: ...``, and without a position ``severity DM### message (hint)``.

        Returns
        -------
        str
            One line.
        """
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}" if where else \
                f"{self.line}:{self.column or 1}"
        text = f"{where}: " if where else ""
        text += f"{self.severity} {self.code} {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def as_json(self) -> dict[str, Any]:
        """The diagnostic as the JSON object of ``check --json`` (SCHEMA.md DIAG-005).

        Returns
        -------
        dict
            ``code``, ``severity``, ``rule``, ``file``, ``line``, ``column``, ``path`` (a list),
            ``message`` and ``hint``.
        """
        return {
            "code": self.code,
            "severity": self.severity,
            "rule": self.rule,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": list(self.path),
            "message": self.message,
            "hint": self.hint,
        }


def _rebuild_error(cls: type, args: tuple, state: dict) -> "DataManifestError":
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class DataManifestError(Exception):
    """Base of every error datamanifest raises on purpose.

    Carries a stable ``code`` (``DM###``), an optional location and a ``hint``
    telling the user what to do. ``str(err)`` is the one-line rendering
    ``FILE:LINE:COL: error DM### message (hint)`` (DIAG-003); ``err.__cause__`` is the
    underlying error (an ``OSError``, an HTTP error) when there is one.
    """

    code = "DM000"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        diagnostics: list[Diagnostic] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        # SEC-002: whatever URI a message quotes, its credentials are never shown
        self.message = redact_text(message)
        self.hint = redact_text(hint) if hint else hint
        self.file = file
        self.line = line
        self.column = column
        self.diagnostics = diagnostics or []
        super().__init__(message)

    def __str__(self) -> str:
        # rendered when asked, so a location added after construction (the fetch engine
        # places a dataset's error at its entry, DIAG-001) is in the text
        return self.render()

    def located(self, file: str) -> "DataManifestError":
        """This error located at ``file`` (a path or URL) when it has no location yet;
        returns itself, its text re-rendered."""
        if self.file is None and file:
            self.file = file
            prefix = f"{file}: "
            if self.message.startswith(prefix):  # the path was written into the message
                self.message = self.message[len(prefix):]
            self.args = (self.render(),)
        return self

    def as_diagnostic(self) -> Diagnostic:
        return Diagnostic(self.code, self.message, self.file, self.line, self.column, (), self.hint)

    def __reduce__(self):
        # subclasses take other constructor arguments: rebuild from the attributes instead,
        # so errors cross process boundaries (forked fetch workers) intact
        return (_rebuild_error, (type(self), self.args, self.__dict__.copy()))

    def render(self) -> str:
        return self.as_diagnostic().render()


class ManifestError(DataManifestError):
    """A manifest could not be found, read or is invalid (DM001–DM060, DM091)."""

    code = "DM091"


class LookupFailed(DataManifestError):
    """An identifier matched no dataset (DM076) or several (DM077)."""

    code = "DM076"


class FetchError(DataManifestError):
    """A dataset could not be materialized (DM070–DM081)."""

    code = "DM071"


class ChecksumMismatch(FetchError):
    """The bytes received do not match the declared checksum (DM070, FET-004)."""

    code = "DM070"

    def __init__(self, dataset: str, algorithm: str, expected: str, actual: str) -> None:
        self.dataset = dataset
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"dataset {dataset!r}: {algorithm} checksum mismatch: expected {expected}, got {actual}",
            hint="nothing was published; if the source changed on purpose, update `checksum` "
            "(or set it to \"\" to re-fill it)",
        )


class UnsafeArchive(FetchError):
    """An archive member would land outside the extraction target (DM073, FET-020)."""

    code = "DM073"


class LockTimeout(DataManifestError):
    """Waiting for another process's lock took longer than allowed (DM075, LCK-006)."""

    code = "DM075"


class StateError(DataManifestError):
    """The state file cannot be read (DM090)."""

    code = "DM090"


class ProduceError(DataManifestError):
    """A produced dataset could not be declared, computed, stored or loaded (SCHEMA.md §21).

    Codes: DM100 (a parameter without canonical form, PRD-003), DM113 (a function that
    cannot be a producer as declared, PRD-004..PRD-006), DM114 (a format that cannot be
    written or read, PRD-012), DM115 (not present, PRD-020), DM116 (two producers claim
    one cachetype and version, PRD-005).
    """

    code = "DM113"


class MaintenanceError(DataManifestError):
    """A maintenance action refused or failed (SCHEMA.md §22–§23, DM130–DM137)."""

    code = "DM130"


class AuthoringError(DataManifestError):
    """An authoring verb refused an edit (SCHEMA.md §24, DM140–DM143): a manifest already
    there (DM140), a name taken (DM141), an import source that does not parse (DM143,
    located at its line and column)."""

    code = "DM141"


class VirtualError(DataManifestError):
    """A chunk manifest could not be read, built, combined or served (SCHEMA.md §25).

    Codes: DM150/DM151 malformed, DM152 a source changed since it was indexed, DM153 a filter
    without a codec, DM154 sources that cannot be concatenated, DM155 a checksum mismatch.
    """

    code = "DM150"


class TrustError(DataManifestError):
    """The manifest is not trusted for what a run would do (SCHEMA.md §27.1): it would run
    code the manifest names or write outside the project (DM180, listing each entry in
    ``diagnostics``), or the trust record cannot be written (DM184). ``str()`` lists the
    entries too (the CLI prints them as lines of their own)."""

    code = "DM180"

    def __str__(self) -> str:
        return "\n".join([d.render() for d in self.diagnostics] + [self.render()])


class ClobberError(DataManifestError):
    """A file or folder that datamanifest did not publish is where it would publish
    (DM182, SCHEMA.md STO-018); it is left as it is. ``path`` names it."""

    code = "DM182"

    def __init__(self, message: str, *, path: str = "", **kw: Any) -> None:
        self.path = path
        super().__init__(message, **kw)


class AppendError(DataManifestError):
    """An append refused or failed (SCHEMA.md §26, DM160–DM167).

    Codes: DM160 a malformed configuration, DM161–DM165 a slice that does not fit the target
    (naming the variable and the difference; the target is untouched), DM166 a target changed
    under a pending transaction, DM167 a target that is not a Zarr group.
    """

    code = "DM160"


class MissingDependency(DataManifestError):
    """A feature needs an optional library that is not installed (DM170, DIAG-020).

    ``module`` is the missing top-level module, ``extra`` the extra of the package that
    installs it (the hint reads ``pip install 'datamanifest[EXTRA]'``). Raised by
    :func:`datamanifest.optional.need` before anything is changed."""

    code = "DM170"

    def __init__(self, message: str, *, module: str, extra: str, **kw) -> None:
        self.module = module
        self.extra = extra
        super().__init__(message, **kw)
