"""The parameter hash of produced datasets (SCHEMA.md §12, rules PAR-001..PAR-009).

The hash is the lowercase hex SHA-256 of the UTF-8 bytes of the *canonical
JSON* of a key table. Canonical JSON is defined by a grammar in SCHEMA.md
§12.2 and produced here by our own serializer, not by a JSON library:

    value   = object / array / string / integer / float / "true" / "false"
    object  = "{" [ member *( "," member ) ] "}"   ; members sorted by key, code point order
    member  = string ":" value
    array   = "[" [ value *( "," value ) ] "]"     ; order kept
    string  = DQUOTE *char DQUOTE                  ; only ", \\ and U+0000..U+001F escaped
    integer = ["-"] digits                          ; no leading zeros, no "+"
    float   = shortest round-trip digits, laid out per PAR-004

``null``, NaN and infinities have no canonical form (PAR-003). Pure; no I/O.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from .secrets import redact_uri

#: Escapes of the canonical string form (PAR-005); everything else is written raw.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t"}


class ParameterError(ValueError):
    """A value with no canonical form (DM100): null, NaN, an infinity, or another type."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


def format_float(x: float) -> str:
    """The canonical text of a finite float (PAR-004).

    Digits: the shortest decimal string that reads back as the same binary64
    value. Layout, with decimal exponent ``e`` of the first digit
    (``d.ddd × 10^e``): positional when ``-4 <= e < 16``, always with a
    fractional part (``1.0``, ``0.0001``); otherwise ``d[.ddd]e±XX`` with at
    least two exponent digits (``1e+16``, ``1.5e-05``). ``-0.0`` keeps its sign.
    """
    if not math.isfinite(x):
        raise ParameterError(f"{x!r} has no canonical form")
    # repr() yields the shortest round-trip digits; re-lay them out per PAR-004.
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    digits, exp = _shortest_digits(abs(x))
    if -4 <= exp < 16:
        if exp >= 0:
            int_part = digits[: exp + 1].ljust(exp + 1, "0")
            frac = digits[exp + 1:] or "0"
        else:
            int_part = "0"
            frac = "0" * (-exp - 1) + digits
        return f"{sign}{int_part}.{frac}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _shortest_digits(x: float) -> tuple[str, int]:
    """(significant digits without leading/trailing zeros, decimal exponent of the first)."""
    if x == 0.0:
        return "0", 0
    text = repr(x)
    mant, _, e = text.partition("e")
    exp = int(e) if e else 0
    int_part, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    all_digits = int_part + frac
    stripped = all_digits.lstrip("0")
    leading = len(all_digits) - len(stripped)
    exp += len(int_part) - 1 - leading
    return (stripped.rstrip("0") or "0"), exp


def _string(s: str) -> str:
    out = []
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def canonical_json(value: Any, _path: tuple[str | int, ...] = ()) -> str:
    """The canonical JSON text of ``value`` (PAR-002..PAR-005). Raises ParameterError."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        try:
            return format_float(value)
        except ParameterError:
            raise ParameterError(f"{value!r} at {_where(_path)} has no canonical form "
                                 "(NaN and infinities are not parameters)", _path) from None
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(v, (*_path, i)) for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ParameterError(f"key {k!r} at {_where(_path)} is not a string", _path)
        items = sorted(value.items())  # str order is code point order (PAR-002)
        return "{" + ",".join(_string(k) + ":" + canonical_json(v, (*_path, k))
                              for k, v in items) + "}"
    if value is None:
        raise ParameterError(f"null at {_where(_path)} has no canonical form; omit the "
                             "parameter instead", _path)
    raise ParameterError(f"{type(value).__name__} at {_where(_path)} is not a parameter value "
                         "(use strings, numbers, booleans, arrays and tables)", _path)


def _where(path: tuple[str | int, ...]) -> str:
    return "/" + "/".join(map(str, path)) if path else "the top level"


def key_table(params: dict[str, Any]) -> dict[str, Any]:
    """The hashed key table: ``params`` without top-level keys starting with ``_`` (PAR-001),
    each URI credential in its strings redacted (PAR-009)."""
    return {k: redacted(v) for k, v in params.items() if not k.startswith("_")}


def redacted(value: Any) -> Any:
    """``value`` with every string that holds a URI credential in its redacted form
    (PAR-009, SEC-001), at any depth; the same object when nothing changes."""
    if isinstance(value, str):
        return redact_uri(value) if ("@" in value or "=" in value) else value
    if isinstance(value, (list, tuple)):
        new = [redacted(v) for v in value]
        return value if all(a is b for a, b in zip(new, value)) else type(value)(new)
    if isinstance(value, dict):
        out = {k: redacted(v) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    return value


def parameter_hash(params: dict[str, Any]) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of ``key_table(params)`` (PAR-006)."""
    return hashlib.sha256(canonical_json(key_table(params)).encode("utf-8")).hexdigest()


def check_cachetype(cachetype: str) -> None:
    """PAR-007: a cachetype is non-empty, has no ``@``, ``/`` or ``\\``, is not ``.``/``..``."""
    if not cachetype or any(c in cachetype for c in "@/\\") or cachetype in (".", "..") \
            or any(ord(c) < 0x20 for c in cachetype):
        raise ParameterError(f"cachetype {cachetype!r} is not a valid identity "
                             "(non-empty, without '@', '/' or '\\\\')")


def cache_key(cachetype: str, params: dict[str, Any], version: str = "") -> str:
    """``<cachetype>/<hash>`` or ``<cachetype>/<version>/<hash>`` (PAR-008)."""
    check_cachetype(cachetype)
    if version and any(c in version for c in "@/\\"):
        raise ParameterError(f"version {version!r} must not contain '@', '/' or '\\\\'")
    h = parameter_hash(params)
    return f"{cachetype}/{version}/{h}" if version else f"{cachetype}/{h}"
