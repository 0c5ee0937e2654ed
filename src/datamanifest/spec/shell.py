"""Shell fetcher templates -> argument vectors (SCHEMA.md §13, rules SH-001..SH-007).

A ``shell`` template is split into words first, then variables are
substituted inside each word, once. The result is an argument vector
executed without a shell: a value containing spaces, quotes or ``;`` stays
one argument and is never code.

Words (SH-001): unquoted white space separates words; ``'...'`` is literal
(no substitution); ``"..."`` groups, and inside it ``\\"``, ``\\\\`` and ``\\$``
escape; outside quotes ``\\x`` is a literal ``x``.

Variables (SH-002): ``$name`` takes the longest ``[A-Za-z_][A-Za-z0-9_]*``
(so ``$path_10`` never reads as ``$path_1`` followed by ``0``); ``${name}``
delimits explicitly; ``$$`` is a literal ``$``. Substituted text is never
expanded again (SH-003). An unknown variable is DM101 (SH-004).
``$requires_paths`` standing alone as a whole unquoted word becomes one
argument per path; elsewhere it is the paths joined by single spaces (SH-005).
Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Variables every shell fetcher receives (SH-006); ``path_<ref>`` and
#: ``path_<i>`` are added per requirement.
STANDARD_VARIABLES = ("download_path", "project_root", "uri", "key", "version", "doi", "format",
                      "branch", "requires_paths")


class TemplateError(ValueError):
    """A template that cannot be split (DM102) or names an unknown variable (DM101)."""

    def __init__(self, message: str, code: str, column: int) -> None:
        super().__init__(message)
        self.code = code
        self.column = column  # 1-based position in the template


# A word is a list of (text, kind) segments; kind: LITERAL (single-quoted),
# BARE (unquoted) or QUOTED (double-quoted). BARE and QUOTED are substituted.
LITERAL, BARE, QUOTED = 0, 1, 2
Segment = tuple[str, int]


def split_words(template: str) -> list[list[Segment]]:
    """Split ``template`` into words of segments (SH-001). Raises TemplateError (DM102)."""
    words: list[list[Segment]] = []
    cur: list[Segment] | None = None
    i, n = 0, len(template)

    def add(text: str, kind: int) -> None:
        nonlocal cur
        if cur is None:
            cur = []
        if cur and cur[-1][1] == kind:
            cur[-1] = (cur[-1][0] + text, kind)
        else:
            cur.append((text, kind))

    while i < n:
        c = template[i]
        if c in " \t\n":
            if cur is not None:
                words.append(cur)
                cur = None
            i += 1
        elif c == "'":
            end = template.find("'", i + 1)
            if end < 0:
                raise TemplateError("unterminated single quote", "DM102", i + 1)
            add(template[i + 1:end], LITERAL)
            i = end + 1
        elif c == '"':
            j = i + 1
            buf = []
            while True:
                if j >= n:
                    raise TemplateError("unterminated double quote", "DM102", i + 1)
                d = template[j]
                if d == '"':
                    break
                if d == "\\" and j + 1 < n and template[j + 1] in '"\\$':
                    if template[j + 1] == "$":
                        buf.append("$$")  # stays a literal $ through substitution
                    else:
                        buf.append(template[j + 1])
                    j += 2
                    continue
                buf.append(d)
                j += 1
            add("".join(buf), QUOTED)  # "" alone is an empty argument
            i = j + 1
        elif c == "\\":
            if i + 1 >= n:
                raise TemplateError("trailing backslash", "DM102", i + 1)
            nxt = template[i + 1]
            add("$$" if nxt == "$" else nxt, BARE)
            i += 2
        else:
            j = i
            while j < n and template[j] not in " \t\n'\"\\":
                j += 1
            add(template[i:j], BARE)
            i = j
    if cur is not None:
        words.append(cur)
    return words


def _substitute(text: str, variables: Mapping[str, str | Sequence[str]], offset: int) -> str:
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            end = text.find("}", i + 2)
            name = text[i + 2:end] if end > 0 else ""
            if end < 0 or not _NAME.fullmatch(name):
                raise TemplateError("malformed ${...}", "DM102", offset + i + 1)
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if not m:
                out.append("$")
                i += 1
                continue
            name = m.group(0)
            i = m.end()
        if name not in variables:
            raise TemplateError(f"unknown variable ${name}", "DM101", offset + 1)
        value = variables[name]
        out.append(value if isinstance(value, str) else " ".join(value))
    return "".join(out)


def to_argv(template: str, variables: Mapping[str, str | Sequence[str]]) -> list[str]:
    """The argument vector of ``template`` with ``variables`` substituted (SH-001..SH-005).

    ``variables`` maps names to strings; ``requires_paths`` may be a list of
    paths. Raises TemplateError (DM101 unknown variable, DM102 bad syntax).
    """
    argv: list[str] = []
    for word in split_words(template):
        if len(word) == 1 and word[0] == ("$requires_paths", BARE):
            value = variables.get("requires_paths")
            if value is None:
                raise TemplateError("unknown variable $requires_paths", "DM101", 1)
            argv.extend([value] if isinstance(value, str) else list(value))
            continue
        argv.append("".join(t if kind == LITERAL else _substitute(t, variables, 0)
                            for t, kind in word))
    if not argv:
        raise TemplateError("the template is empty", "DM102", 1)
    return argv
