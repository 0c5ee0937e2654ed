"""Storage path expressions and `$` symbols (SCHEMA.md §7, STO-001..STO-004).

``storage_path`` and ``[_STORAGE]`` values are path expressions: ``$NAME`` or
``${NAME}`` name a symbol, ``$$`` is a literal ``$``, a leading ``~`` is the
home directory. Expansion is single-pass per symbol with cycle detection;
an unknown symbol is an error (STO-003). Pure: the caller supplies symbols.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

#: JSON Schema pattern of ``storage_path``: no ``..`` segment (STO-004).
STORAGE_PATH_PATTERN = r"^(?!.*(?:^|[/\\])\.\.(?:[/\\]|$))[^\x00]*$"

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class SymbolError(ValueError):
    """An unknown symbol or a symbol cycle (DM060). ``symbol`` names the culprit."""

    def __init__(self, message: str, symbol: str) -> None:
        super().__init__(message)
        self.symbol = symbol


@functools.lru_cache(maxsize=4096)
def symbols_in(expr: str) -> tuple[str, ...]:
    """The symbol names ``expr`` refers to, in order of appearance."""
    return tuple(m.group(1) or m.group(2) for m in _TOKEN.finditer(expr) if m.group(0) != "$$")


def expand(expr: str, symbols: Mapping[str, str], _stack: tuple[str, ...] = ()) -> str:
    """Expand ``$`` symbols in ``expr`` (STO-003).

    A symbol's own value is expanded recursively (a user symbol may refer to a
    predefined one); a cycle or an unknown name raises :class:`SymbolError`.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        if name in _stack:
            raise SymbolError(f"symbol cycle: {' -> '.join((*_stack, name))}", name)
        if name not in symbols:
            raise SymbolError(f"unknown symbol ${name}", name)
        return expand(symbols[name], symbols, (*_stack, name))

    return _TOKEN.sub(repl, expr)


_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def is_env_name(name: str) -> bool:
    """True for upper-case names, which refer to environment variables (STO-003)."""
    return bool(_ENV_NAME.match(name))


def is_keyed(expr: str) -> bool:
    """True when ``storage_path`` is tool-managed (refers to ``$key``; STO-001)."""
    return "key" in symbols_in(expr)
