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
