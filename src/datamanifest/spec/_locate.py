"""Source positions for TOML documents (SCHEMA.md DIAG-001).

tomllib gives values but no positions. :func:`locate` scans a document that
tomllib has already accepted and maps every JSON path (tuple of keys and
array indices) to the 1-based line and column of its key and of its value.
A table defined by a header maps to the header. The scanner is tolerant: on
anything unexpected it stops and returns what it found, so it never raises.

Only run when a diagnostic needs a position (it is not on the hot path).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

Path = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_WS = " \t"


@dataclass(frozen=True)
class Span:
    key_line: int
    key_col: int
    value_line: int
    value_col: int


class _Stop(Exception):
    pass


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)
        # line starts for O(log n) position lookup
        self.line_starts = [0]
        for m in re.finditer("\n", text):
            self.line_starts.append(m.end())
        self.spans: dict[Path, Span] = {}
        self.aot_count: dict[tuple[str, ...], int] = {}

    # -- positions ---------------------------------------------------------
    def pos(self, i: int) -> tuple[int, int]:
        import bisect

        line = bisect.bisect_right(self.line_starts, i) - 1
        return line + 1, i - self.line_starts[line] + 1

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < self.n else ""

    def skip_ws(self) -> None:
        while self.i < self.n and self.s[self.i] in _WS:
            self.i += 1

    def skip_ws_comments_newlines(self) -> None:
        while self.i < self.n:
            c = self.s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                self.line_comment()
            else:
                return

    # -- keys ----------------------------------------------------------------
    def read_simple_key(self) -> tuple[str, int]:
        start = self.i
        c = self.peek()
        if c == '"' or c == "'":
            raw = self.read_string_raw()
            try:
                return tomllib.loads(f"k = {raw}")["k"], start
            except tomllib.TOMLDecodeError:
                raise _Stop from None
        m = _BARE.match(self.s, self.i)
        if not m:
            raise _Stop
        self.i = m.end()
        return m.group(0), start

    def read_dotted_key(self) -> list[tuple[str, int]]:
        parts = [self.read_simple_key()]
        while True:
            self.skip_ws()
            if self.peek() == ".":
                self.i += 1
                self.skip_ws()
                parts.append(self.read_simple_key())
            else:
                return parts

    # -- strings and values ----------------------------------------------------
    def read_string_raw(self) -> str:
        start = self.i
        s = self.s
        if s.startswith('"""', self.i):
            self.i += 3
            while self.i < self.n:
                if s[self.i] == "\\":
                    self.i += 2
                    continue
                if s.startswith('"""', self.i):
                    self.i += 3
                    while self.peek() == '"':  # up to two quotes may close the content
                        self.i += 1
                    return s[start : self.i]
                self.i += 1
            raise _Stop
        if s.startswith("'''", self.i):
            end = s.find("'''", self.i + 3)
            if end < 0:
                raise _Stop
            self.i = end + 3
            while self.peek() == "'":
                self.i += 1
            return s[start : self.i]
        q = s[self.i]
        self.i += 1
        while self.i < self.n:
            c = s[self.i]
            if q == '"' and c == "\\":
                self.i += 2
                continue
            if c == q:
                self.i += 1
                return s[start : self.i]
            if c == "\n":
                raise _Stop
            self.i += 1
        raise _Stop

    def read_value(self, path: Path) -> None:
        c = self.peek()
        if c == '"' or c == "'":
            self.read_string_raw()
        elif c == "[":
            self.i += 1
            idx = 0
            while True:
                self.skip_ws_comments_newlines()
                if self.peek() == "]":
                    self.i += 1
                    return
                self.read_element((*path, idx))
                idx += 1
                self.skip_ws_comments_newlines()
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() == "]":
                    self.i += 1
                    return
                else:
                    raise _Stop
        elif c == "{":
            self.i += 1
            while True:
                self.skip_ws_comments_newlines()
                if self.peek() == "}":
                    self.i += 1
                    return
                self.read_keyval(path)
                self.skip_ws_comments_newlines()
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() == "}":
                    self.i += 1
                    return
                else:
                    raise _Stop
        else:
            # number, boolean, date-time: up to a delimiter
            start = self.i
            while self.i < self.n and self.s[self.i] not in ",]}\n#":
                self.i += 1
            if self.i == start:
                raise _Stop

    def read_element(self, elem: Path) -> None:
        """An array's element at the cursor: records its span (where it starts) and reads it.
        A hook: the comment scanner records the element as an item too."""
        vpos = self.pos(self.i)
        self.spans[elem] = Span(*vpos, *vpos)
        self.read_value(elem)

    def read_keyval(self, table: Path) -> Path:
        """A ``key = value`` at the cursor, below ``table``: records both spans, returns the
        key's path."""
        parts = self.read_dotted_key()
        path = table
        for name, start in parts:
            path = (*path, name)
            if path not in self.spans:
                kpos = self.pos(start)
                self.spans[path] = Span(*kpos, *kpos)
        self.skip_ws()
        if self.peek() != "=":
            raise _Stop
        self.i += 1
        self.skip_ws()
        key_span = self.spans[path]
        vpos = self.pos(self.i)
        self.spans[path] = Span(key_span.key_line, key_span.key_col, *vpos)
        self.read_value(path)
        return path

    # -- headers -----------------------------------------------------------------
    def resolve_header(self, names: list[str], is_aot: bool) -> Path:
        out: list[str | int] = []
        for k in range(len(names)):
            out.append(names[k])
            prefix = tuple(names[: k + 1])
            last = k == len(names) - 1
            if last and is_aot:
                count = self.aot_count.get(prefix, -1) + 1
                self.aot_count[prefix] = count
                # nested arrays of tables restart when their parent advances
                for other in list(self.aot_count):
                    if len(other) > len(prefix) and other[: len(prefix)] == prefix:
                        del self.aot_count[other]
                out.append(count)
            elif prefix in self.aot_count:
                out.append(self.aot_count[prefix])
        return tuple(out)

    def read_header(self) -> tuple[int, Path]:
        """A ``[table]`` or ``[[array of tables]]`` header at the cursor: (its offset, the
        table's path)."""
        start = self.i
        is_aot = self.s.startswith("[[", self.i)
        self.i += 2 if is_aot else 1
        self.skip_ws()
        parts = self.read_dotted_key()
        self.skip_ws()
        close = "]]" if is_aot else "]"
        if not self.s.startswith(close, self.i):
            raise _Stop
        self.i += len(close)
        return start, self.resolve_header([p[0] for p in parts], is_aot)

    def header(self, start: int, table: Path) -> None:
        """Record a header's table (intermediate tables implied by it point at it too)."""
        hpos = self.pos(start)
        for k in range(1, len(table) + 1):
            self.spans.setdefault(table[:k], Span(*hpos, *hpos))
        self.spans[table] = Span(*hpos, *hpos)

    def line_comment(self) -> None:
        """A comment at the cursor, up to its line's end; a hook: the comment scanner records
        it."""
        while self.i < self.n and self.s[self.i] != "\n":
            self.i += 1

    def run(self) -> None:
        table: Path = ()
        while True:
            self.skip_ws_comments_newlines()
            if self.i >= self.n:
                return
            if self.peek() == "[":
                start, table = self.read_header()
                self.header(start, table)
            else:
                self.read_keyval(table)
            self.skip_ws()
            if self.peek() == "#":
                self.line_comment()
            if self.i < self.n and self.s[self.i] not in "\r\n":
                raise _Stop


def locate(text: str) -> dict[Path, Span]:
    """Map each JSON path of the TOML document ``text`` to its :class:`Span`."""
    sc = _Scanner(text)
    try:
        sc.run()
    except (_Stop, IndexError):
        pass
    return sc.spans


class Locator:
    """Lazy position lookup for one document: ``Locator(text).find(path, value=True)``."""

    def __init__(self, text: str | None) -> None:
        self.text = text
        self._spans: dict[Path, Span] | None = None

    def find(self, path: Path, *, value: bool = True) -> tuple[int | None, int | None]:
        """Line and column of ``path``'s value (or key); falls back to the nearest parent."""
        if self.text is None:
            return None, None
        if self._spans is None:
            self._spans = locate(self.text)
        p = tuple(path)
        while p:
            span = self._spans.get(p)
            if span is not None:
                return (span.value_line, span.value_col) if value else (span.key_line, span.key_col)
            p = p[:-1]
        return 1, 1


_ERR_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def decode_error_position(err: tomllib.TOMLDecodeError, text: str) -> tuple[int, int, str]:
    """(line, column, message) of a tomllib syntax error, on every Python >= 3.11."""
    msg = str(err)
    line = getattr(err, "lineno", None)
    col = getattr(err, "colno", None)
    m = _ERR_POS.search(msg)
    if m:
        msg = msg[: m.start()].rstrip()
        if line is None:
            line, col = int(m.group(1)), int(m.group(2))
    if line is None:
        # "(at end of document)"
        msg = msg.replace("(at end of document)", "").rstrip()
        lines = text.split("\n")
        line, col = len(lines), len(lines[-1]) + 1
    elif "(at end of document)" in msg:
        msg = msg.replace("(at end of document)", "").rstrip()
    return int(line), int(col or 1), msg


def count_comments(text: str) -> int:
    """The number of TOML comments in ``text`` (``#`` outside strings). Assumes valid TOML."""
    count, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            count += 1
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith('"""', i) or text.startswith("'''", i):
            q = text[i:i + 3]
            j = i + 3
            while j < n:
                if q == '"""' and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(q, j):
                    j += 3
                    while j < n and text[j] == q[0]:
                        j += 1
                    break
                j += 1
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if (c == '"' and text[j] == "\\") else 1
            i = j + 1
        else:
            i += 1
    return count
