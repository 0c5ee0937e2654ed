"""Trusting a manifest, like direnv's ``allow`` (SCHEMA.md §27.1, TRU-005, TRU-006, TRU-008).

A run that would run code a manifest names, or write or read outside the project and the
user's own stores (:func:`datamanifest.spec.trust.needs`), asks :func:`require` first. It
passes when one of these holds, and otherwise raises DM180 listing every such entry
with its line and column, before anything runs or is written:

* ``--trust`` was given to this command (:func:`grant`);
* ``DATAMANIFEST_TRUST`` is ``1`` (``true``, ``yes``, ``on``) in the environment, for CI
  jobs that run their own project's manifest;
* ``datamanifest trust`` recorded the digest (TRU-003) of the manifest's current
  trust-relevant entries in ``<user config dir>/datamanifest/trust/`` (TRU-006). Any
  change of those entries (or of the checkout configuration) changes the digest, and the
  trust is gone until the user looks again.

Nothing in a manifest or a checkout configuration can grant trust (TRU-009).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Diagnostic, TrustError
from .spec import trust as _trust
from .spec.secrets import redact_text

#: TRU-005: the environment variable that trusts every manifest of a run (CI)
ENV = "DATAMANIFEST_TRUST"
_TRUE = {"1", "true", "yes", "on"}
_GRANTED = False

HOW = ("read what it would do, then run `datamanifest trust` to trust this content (any "
       "change of it revokes the trust); or pass --trust to this one command; a CI job that "
       f"runs its own project's manifest may set {ENV}=1")


def grant() -> None:
    """Trust every manifest for the rest of this process (the ``--trust`` option; forked
    workers inherit it). Never called because of anything a manifest says (TRU-009)."""
    global _GRANTED
    _GRANTED = True


def end_grant() -> None:
    """End what :func:`grant` began (the CLI calls it when the command that had ``--trust``
    ends, so a later command of the same process is not trusted by it)."""
    global _GRANTED
    _GRANTED = False


def granted_by() -> str | None:
    """``"option"`` (``--trust``), ``"environment"`` (``DATAMANIFEST_TRUST``) or None."""
    if _GRANTED:
        return "option"
    if os.environ.get(ENV, "").strip().lower() in _TRUE:
        return "environment"
    return None


def trust_dir() -> Path:
    """``<user config dir>/datamanifest/trust`` (platformdirs; ``$XDG_CONFIG_HOME`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir()) / "datamanifest" / "trust"


def record_path(manifest_path: str | Path) -> Path:
    """TRU-006: the trust record of the manifest at ``manifest_path`` (absolute):
    ``<trust dir>/<first 32 hex digits of the SHA-256 of the path>.json``."""
    text = Path(manifest_path).as_posix()
    return trust_dir() / (hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + ".json")


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def entry_json(e: _trust.Entry) -> dict[str, Any]:
    """An entry as the record and ``--json`` show it: its value redacted (SEC-002)."""
    out = e.as_json()
    out["value"] = _redacted(out["value"])
    return out


@dataclass
class Status:
    """Whether a manifest is trusted now: ``trusted``, ``how`` (``option``,
    ``environment``, ``record`` or None), the ``digest`` of its current entries, the
    ``entries``, the ``record`` found (None when there is none) and, when a record exists
    for other content, what ``changed`` since (labels of entries added, removed or
    changed)."""

    manifest: Path
    trusted: bool
    how: str | None
    digest: str
    entries: list[_trust.Entry]
    record: dict[str, Any] | None = None
    changed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"manifest": str(self.manifest), "trusted": self.trusted, "how": self.how,
                "digest": self.digest, "record": str(record_path(self.manifest)),
                "trusted_at": (self.record or {}).get("trusted"),
                "changed": self.changed,
                "entries": [dict(entry_json(e), needs_trust=_trust.reason(e))
                            for e in self.entries]}


def read_record(manifest_path: Path) -> dict[str, Any] | None:
    """The trust record of a manifest, or None when there is none or it cannot be read
    (an unreadable record trusts nothing)."""
    try:
        rec = json.loads(record_path(manifest_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("digest"), str) else None


def _changes(recorded: list[Any], now: list[_trust.Entry]) -> list[str]:
    def key(d: dict[str, Any]) -> tuple:
        return d.get("document", ""), tuple(d.get("path", []))

    before = {key(d): d.get("value") for d in recorded if isinstance(d, dict)}
    after = {key(j): j["value"] for j in map(entry_json, now)}
    labels = {key(entry_json(e)): e.label() for e in now}
    out = []
    for k in sorted(set(before) | set(after)):
        label = labels.get(k) or _trust.Entry(k[0], k[1], None, "").label()
        if k not in before:
            out.append(f"added {label}")
        elif k not in after:
            out.append(f"removed {label}")
        elif before[k] != after[k]:
            out.append(f"changed {label}")
    return out


def entries_of(project) -> list[_trust.Entry]:
    """The trust-relevant entries of an opened project (TRU-002)."""
    return _trust.entries(project.check.data or {}, project.storage.checkout)


def status(project) -> Status:
    """Whether ``project``'s manifest is trusted now (TRU-005)."""
    return status_of(project.manifest_path, project.check.data or {}, project.storage.checkout)


def status_of(manifest_path: Path, manifest: dict[str, Any], checkout: dict[str, Any] | None
              ) -> Status:
    """Whether the manifest at ``manifest_path`` (absolute), parsed as ``manifest``, with the
    checkout configuration ``checkout``, is trusted now (TRU-005)."""
    items = _trust.entries(manifest, checkout)
    d = _trust.digest(manifest_path.as_posix(), items)
    how = granted_by()
    rec = read_record(manifest_path)
    if how is None and rec is not None and rec.get("digest") == d:
        how = "record"
    changed = _changes(rec.get("entries") or [], items) if rec is not None and \
        rec.get("digest") != d else []
    if rec is not None and rec.get("digest") != d and not changed:
        changed = ["a value hidden by redaction"]
    return Status(manifest_path, how is not None, how, d, items, rec, changed)


def _locate(manifest_path: Path, need: _trust.Need) -> tuple[str | None, int | None, int | None]:
    from .config import checkout_config_path
    from .spec._locate import Locator

    if need.entry is None:
        return None, None, None
    document, path = need.entry
    file = manifest_path if document == _trust.MANIFEST else \
        checkout_config_path(manifest_path.parent)
    try:
        line, col = Locator(file.read_text(encoding="utf-8")).find(path)
    except OSError:
        line, col = None, None
    return str(file), line, col


def needs(project, *, fetch: "list[str] | tuple[str, ...]" = (),
          load: "list[str] | tuple[str, ...]" = (), roots: bool = False,
          datacache: bool = False) -> list[_trust.Need]:
    """What a run of ``project`` would do that needs its manifest trusted (TRU-004), as
    :meth:`datamanifest.Project.trust_needs` documents; paths are judged where they really
    lead (symbolic links resolved, each folder once)."""
    from . import formats

    if not (fetch or load or roots or datacache):
        return []
    folders: dict[str, str] = {}

    def realpath(path: str) -> str:
        # where the bytes land: the folder resolved (once per folder), the name itself
        # kept (a publish renames onto a link, it does not write through it)
        head, tail = os.path.split(path)
        real = folders.get(head)
        if real is None:
            real = folders[head] = os.path.realpath(head)
        return os.path.join(real, tail) if tail else real

    storage = project.storage
    return _trust.needs(project.manifest, storage.checkout or {}, storage.user or {},
                      storage.platform, lang="python", fetch=list(fetch), load=list(load),
                      builtin_formats=formats.loadable(), roots=roots, datacache=datacache,
                      realpath=realpath)


def require(project, needs: list[_trust.Need], *, action: str = "run") -> None:
    """Refuse a run that needs trust the manifest does not have (TRU-005).

    Parameters
    ----------
    project : Project
        The opened project.
    needs : list of Need
        What the run would do that needs trust (:func:`datamanifest.spec.trust.needs`).
    action : str
        The command, for the message (``fetch``, ``load``, ...).

    Raises
    ------
    TrustError
        DM180, before anything runs or is written, with one DM180 diagnostic per need
        (located at the entry responsible) and a hint naming the three ways to trust.
    """
    if needs:
        require_for(project.manifest_path, project.check.data or {}, project.storage.checkout,
                    needs, action=action)


def require_for(manifest_path: Path, manifest: dict[str, Any], checkout: dict[str, Any] | None,
                needs: list[_trust.Need], *, action: str = "run") -> None:
    """:func:`require` for a manifest given by its path and parsed documents (the produced
    datasets' context has no opened project). Raises TrustError DM180."""
    if not needs:
        return
    st = status_of(manifest_path, manifest, checkout)
    if st.trusted:
        return
    diags = []
    for n in needs:
        file, line, col = _locate(manifest_path, n)
        who = f"dataset {n.dataset!r}: " if n.dataset else ""
        diags.append(Diagnostic("DM180", f"{who}{n.what}", file, line, col,
                                n.entry[1] if n.entry else (), None, "error"))
    if st.record is not None:
        when = st.record.get("trusted", "?")
        why = (f"it changed since you trusted it ({when}): " + "; ".join(st.changed[:6])
               + ("; ..." if len(st.changed) > 6 else ""))
    else:
        why = "it was never trusted on this machine"
    raise TrustError(f"`{action}` would run code this manifest names or use locations "
                     f"outside the project ({len(needs)} listed above), and {why}",
                     code="DM180", file=str(manifest_path), hint=HOW,
                     diagnostics=diags)


def write_record(project, st: Status | None = None) -> Path:
    """Record the current digest as trusted (``datamanifest trust``, TRU-006); returns the
    record's path. Raises TrustError DM184 when it cannot be written."""
    return _write(project.manifest_path, st or status(project))


def _write(manifest_path: Path, st: Status) -> Path:
    from .store.atomic import write_text

    rec = {"manifest": manifest_path.as_posix(), "digest": st.digest,
           "trusted": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
           .replace("+00:00", "Z"),
           "entries": [entry_json(e) for e in st.entries]}
    path = record_path(manifest_path)
    try:
        write_text(path, json.dumps(rec, indent=1, ensure_ascii=False) + "\n")
    except OSError as e:
        raise TrustError(f"cannot write the trust record {path}: {e.strerror or e}",
                         code="DM184", hint="check that your configuration folder is writable "
                         "(XDG_CONFIG_HOME), or use --trust for this run") from e
    return path


def revoke(manifest_path: Path) -> bool:
    """Remove a manifest's trust record; whether there was one."""
    try:
        record_path(manifest_path).unlink()
        return True
    except FileNotFoundError:
        return False


def digest_now(project) -> str:
    """The digest of a project's current trust-relevant content (TRU-003)."""
    return _trust.digest(project.manifest_path.as_posix(), entries_of(project))


def file_status(manifest_path: str | Path) -> Status | None:
    """:func:`status_of` for the manifest file at ``manifest_path`` and its checkout
    configuration, read now; None when either cannot be read as TOML."""
    import tomllib

    from .config import checkout_config_path

    path = Path(manifest_path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        checkout_file = checkout_config_path(path.parent)
        checkout = tomllib.loads(checkout_file.read_text(encoding="utf-8")) \
            if checkout_file.is_file() else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return status_of(path, data, checkout)


def keep(manifest_path: str | Path, edit):
    """TRU-008: run ``edit()`` (an edit of the manifest or its checkout configuration the
    user asked this tool for) and, when the manifest's record held the digest of the
    content before it, record the digest after it. Never creates a trust that did not
    exist. Returns ``(edit's result, whether the trust was carried over)``."""
    path = Path(manifest_path).resolve()
    before = file_status(path)
    result = edit()
    if before is None or before.record is None or before.record.get("digest") != before.digest:
        return result, False
    after = file_status(path)
    if after is None or after.digest == before.digest:
        return result, False
    _write(path, after)
    return result, True
