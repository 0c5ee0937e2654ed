"""Comments through the canonical form: what each comment belongs to (SCHEMA.md FMT-005,
FMT-006) and the canonical text with every comment kept where it belongs.

A comment belongs to a key, a table header or an array element, so that the canonical
order (FMT-001) moves it with what it annotates:

* a comment after content on its line (*trailing*) belongs to the item that ends last on
  that line (a key and its value, an array element, a header), else to the item that
  starts on it (``aliases = [  # ...``);
* a block of whole-line comments directly above a key, a header or an array element (no
  blank line between) belongs to it (*before*);
* inside an array, a block below the last element belongs to that element (*after*);
* the file's leading block belongs to the document's *head*, a block after the last item,
  separated from it by a blank line, to its *tail*;
* a block directly below a table's last key (no blank line between), not directly above
  another item, belongs to the *end* of that table.

Any other comment (a block with blank lines on both sides in the middle of the document)
belongs to nothing: the canonical form cannot place it (DM094, FMT-006).

Pure; no I/O.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from ._locate import Path, _Scanner, _Stop, _WS


@dataclass(frozen=True)
class Item:
    """A key and its value (``key``), an array element (``elem``) or a header (``header``):
    its JSON path, the table holding it, and its source offsets (end exclusive)."""

    kind: str
    path: Path
    table: Path
    start: int
    end: int


@dataclass(frozen=True)
class Comment:
    """One comment: its offset, text (``#`` to the end of the line, right-stripped), and
    the white space before it when it follows content on its line (``None``: a whole-line
    comment)."""

    offset: int
    text: str
    before: str | None
    content: str = ""


@dataclass(frozen=True)
class Attachment:
    """What a comment belongs to: ``kind`` is ``trailing``, ``before``, ``after``, ``end``
    (of the table ``path``), ``head`` or ``tail``; ``path`` is the item's JSON path."""

    kind: str
    path: Path
    text: str
    spacing: str = ""
    content: str = ""  # a trailing comment's line before it, right-stripped


@dataclass
class Scan:
    items: list[Item] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)

    def line(self, offset: int) -> int:
        """1-based line of ``offset``."""
        return bisect.bisect_right(self.line_starts, offset)


class _CommentScanner(_Scanner):
    """The position scanner of :mod:`._locate`, also recording items and comments."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.items: list[Item] = []
        self.comments: list[Comment] = []
        self.table: Path = ()

    def _comment(self) -> None:
        start = self.i
        line_start = self.s.rfind("\n", 0, start) + 1
        head = self.s[line_start:start]
        end = self.s.find("\n", start)
        end = self.n if end < 0 else end
        self.i = end
        text = self.s[start:end].rstrip(" \t\r")
        if head.strip(_WS):
            stripped = head.rstrip(_WS)
            self.comments.append(Comment(start, text, head[len(stripped):], stripped))
        else:
            self.comments.append(Comment(start, text, None))

    def read_element(self, elem: Path) -> None:
        start, at = self.i, len(self.items)  # the element's item goes before its own elements'
        super().read_element(elem)
        self.items.insert(at, Item("elem", elem, self.table, start, self.i))

    def read_keyval(self, table: Path) -> Path:
        start, at = self.i, len(self.items)  # the key's item goes before its elements'
        path = super().read_keyval(table)
        self.items.insert(at, Item("key", path, self.table, start, self.i))
        return path

    def header(self, start: int, table: Path) -> None:
        self.table = table
        self.items.append(Item("header", table, table, start, self.i))

    def line_comment(self) -> None:
        self._comment()


def scan(text: str) -> Scan:
    """The items and comments of a TOML document ``text`` (that tomllib accepts)."""
    sc = _CommentScanner(text)
    try:
        sc.run()
    except (_Stop, IndexError):  # a form the scanner does not follow: place nothing blindly
        raise OrphanComments([sc.pos(min(sc.i, max(0, sc.n - 1)))]) from None
    return Scan(sc.items, sc.comments, sc.line_starts)


def _innermost(items: list[Item], offset: int) -> Item | None:
    """The deepest key or element whose value spans ``offset`` (a multi-line array)."""
    best = None
    for it in items:
        if it.kind != "header" and it.start < offset < it.end:
            if best is None or (it.start >= best.start and it.end <= best.end):
                best = it
    return best


def attach(text: str) -> tuple[list[Attachment], list[int]]:
    """What each comment of ``text`` belongs to (FMT-005), in source order, and the offsets
    of the comments that belong to nothing (FMT-006)."""
    sc = scan(text)
    line = sc.line
    out: list[Attachment] = []
    orphans: list[int] = []
    top = [it for it in sc.items if it.kind != "elem" and _innermost(sc.items, it.start) is None]
    comments = sc.comments
    i = 0
    while i < len(comments):
        c = comments[i]
        if c.before is not None:  # trailing
            ln = line(c.offset)
            ending = [it for it in sc.items if it.end <= c.offset and line(it.end - 1) == ln]
            if ending:
                it = max(ending, key=lambda t: (t.end, -t.start))
            else:
                starting = [it for it in sc.items if line(it.start) == ln and it.start < c.offset]
                it = min(starting, key=lambda t: t.start) if starting else None
            if it is None:
                orphans.append(c.offset)
            else:
                out.append(Attachment("trailing", it.path, c.text, c.before, c.content))
            i += 1
            continue
        # a block of whole-line comments on consecutive lines
        block = [c]
        while i + len(block) < len(comments):
            nxt = comments[i + len(block)]
            if nxt.before is not None or line(nxt.offset) != line(block[-1].offset) + 1:
                break
            block.append(nxt)
        i += len(block)
        first, last = line(block[0].offset), line(block[-1].offset)
        texts = [b.text for b in block]
        container = _innermost(sc.items, block[0].offset)
        if container is not None:  # inside an array
            inner = [it for it in sc.items if it.kind == "elem" and container.start < it.start
                     < container.end and _innermost(sc.items, it.start) is container]
            after = [it for it in inner if it.start > block[-1].offset]
            before = [it for it in inner if it.end < block[0].offset]
            if after:
                out.extend(Attachment("before", after[0].path, t) for t in texts)
            elif before:
                out.extend(Attachment("after", before[-1].path, t) for t in texts)
            else:
                out.extend(Attachment("trailing", container.path, t, "  ") for t in texts)
            continue
        nxt = next((it for it in top if it.start > block[-1].offset), None)
        prv = next((it for it in reversed(top) if it.end <= block[0].offset), None)
        if nxt is not None and line(nxt.start) == last + 1:
            out.extend(Attachment("before", nxt.path, t) for t in texts)
        elif prv is None:
            out.extend(Attachment("head", (), t) for t in texts)
        elif line(prv.end - 1) == first - 1:
            table = prv.path if prv.kind == "header" else prv.table
            out.extend(Attachment("end", table, t) for t in texts)
        elif nxt is None:
            out.extend(Attachment("tail", (), t) for t in texts)
        else:
            orphans.extend(b.offset for b in block)
    return out, orphans


def positions(text: str, offsets: list[int]) -> list[tuple[int, int]]:
    """1-based (line, column) of each offset of ``text``."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    out = []
    for off in offsets:
        ln = bisect.bisect_right(starts, off)
        out.append((ln, off - starts[ln - 1] + 1))
    return out


class OrphanComments(ValueError):
    """Comments that belong to nothing (FMT-006): ``positions`` lists their (line, column)."""

    def __init__(self, positions: list[tuple[int, int]]) -> None:
        self.positions = positions
        super().__init__(f"{len(positions)} comment(s) belong to no key or table")


def dumps_with_comments(text: str, data: dict[str, Any], doc_type: str = "manifest") -> str:
    """The canonical text of ``data`` (parsed from ``text``) with the comments of ``text``
    placed where FMT-005 says. Raises :class:`OrphanComments` (FMT-006)."""
    from .canonical import dumps

    text = text.replace("\r\n", "\n")
    canonical = dumps(data, doc_type)
    attachments, orphans = attach(text)
    if orphans:
        raise OrphanComments(positions(text, orphans))
    if not attachments:
        return canonical
    target = scan(canonical)
    lines = canonical.split("\n")[:-1]  # the text ends with one newline (FMT-002)
    first: dict[Path, Item] = {}
    for it in target.items:
        first.setdefault(it.path, it)
        if it.kind == "header":  # a table without a header of its own: its first sub-table
            for k in range(1, len(it.path)):
                first.setdefault(it.path[:k], it)
    own_end: dict[Path, int] = {}  # table -> last line of its own keys
    for it in target.items:
        if it.kind == "key":
            own_end[it.table] = max(own_end.get(it.table, 0), target.line(it.end - 1))
    above: dict[int, list[str]] = {}
    below: dict[int, list[str]] = {}
    trailing: dict[int, list[tuple[str, str]]] = {}
    head: list[str] = []
    tail: list[str] = []
    for a in attachments:
        if a.kind == "head":
            head.append(a.text)
            continue
        if a.kind == "tail":
            tail.append(a.text)
            continue
        if a.kind == "end":
            at = own_end.get(a.path)
            if at is None:
                it = first.get(a.path)
                at = target.line(it.start) if it is not None else 0
            below.setdefault(at, []).append(a.text)
            continue
        it = first.get(a.path)
        if it is None:  # cannot happen for a document equal to data; keep it at the end
            tail.append(a.text)
            continue
        start_line = target.line(it.start)
        indent = lines[start_line - 1][: len(lines[start_line - 1]) -
                                       len(lines[start_line - 1].lstrip(" "))]
        if a.kind == "trailing":
            # the white space before it is kept where the line is unchanged (alignment)
            same = a.content == lines[start_line - 1] and a.spacing
            trailing.setdefault(start_line, []).append((a.spacing if same else "  ", a.text))
        elif a.kind == "before":
            above.setdefault(start_line, []).append(indent + a.text)
        else:  # after an element: below its last line
            below.setdefault(target.line(it.end - 1), []).append(indent + a.text)
    out: list[str] = []
    if head:
        out.extend(head)
        if lines:
            out.append("")
    out.extend(below.get(0, []))
    for n, text_line in enumerate(lines, start=1):
        out.extend(above.get(n, []))
        if n in trailing:
            spacing, first_text = trailing[n][0]
            text_line += spacing + "  ".join([first_text] + [t for _, t in trailing[n][1:]])
        out.append(text_line)
        out.extend(below.get(n, []))
    if tail:
        if out:
            out.append("")
        out.extend(tail)
    return "\n".join(out) + "\n"
