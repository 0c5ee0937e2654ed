"""TOML parsing for the paths that read large documents (a manifest or a state file of
thousands of datasets): the compiled build of ``tomli`` when it is installed, else the
standard library's ``tomllib`` (the same parser, vendored; about half as fast).

Both implement TOML 1.0 (``tomli`` is pinned below 2.4, which adds TOML 1.1). A document
that ``tomli`` refuses is parsed again by ``tomllib``, so the error (message, line,
column) is always ``tomllib``'s, whichever is installed.
"""

from __future__ import annotations

import tomllib
from typing import Any

try:  # pragma: no cover - depends on the environment
    import tomli as _fast
except ImportError:  # pragma: no cover
    _fast = None

TOMLDecodeError = tomllib.TOMLDecodeError


def loads(text: str) -> dict[str, Any]:
    """Parse TOML ``text``. Raises :class:`tomllib.TOMLDecodeError`."""
    if _fast is not None:
        try:
            return _fast.loads(text)
        except _fast.TOMLDecodeError:
            pass
    return tomllib.loads(text)


def parse_for_edit(text: str, file: str | None = None):
    """``tomlkit.parse(text)`` for an edit that keeps comments and layout (MAN-004), with
    tomlkit's own errors turned into a coded error: raises
    :class:`~datamanifest.errors.ManifestError` DM001 at the line:column tomlkit names.
    The spec layer's parser (:func:`loads`) decides validity; tomlkit only edits."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from ..errors import ManifestError

    try:
        return tomlkit.parse(text)
    except TOMLKitError as e:
        line, col = getattr(e, "line", None), getattr(e, "col", None)
        message = str(e).split(" at line ")[0]
        raise ManifestError(f"TOML syntax error: {message}", code="DM001", file=file,
                            line=line or None, column=(col + 1) if col is not None else None,
                            hint="run `datamanifest check` on the file") from e
    except (ValueError, TypeError, KeyError) as e:  # tomlkit's rare internal slips
        raise ManifestError(f"TOML cannot be edited: {e}", code="DM001", file=file,
                            hint="run `datamanifest check` on the file") from e
