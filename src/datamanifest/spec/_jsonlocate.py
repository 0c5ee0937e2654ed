"""Line and column of a value inside a JSON text, by JSON path (DIAG-001, DIAG-004).

``locate(text, ("nodes", "tas", "refs", "source", 7))`` walks the text along the path,
skipping every other value without building it, and returns the 1-based line and column
(in code points) where the value starts; where the path ends early (a missing member), the
position of the deepest value found. Pure; no I/O.
"""

from __future__ import annotations

import re

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def ws(self) -> None:
        self.i = _WS.match(self.text, self.i).end()

    def string(self) -> str:
        import json

        m = _STRING.match(self.text, self.i)
        if m is None:
            raise ValueError("string expected")
        self.i = m.end()
        return json.loads(m.group())

    def skip(self) -> None:
        """Skip one value (iteratively for nested ones)."""
        depth = 0
        while True:
            self.ws()
            ch = self.text[self.i: self.i + 1]
            if ch in "[{":
                depth += 1
                self.i += 1
                continue
            if ch in "]}":
                depth -= 1
                self.i += 1
            elif ch == '"':
                self.string()
            elif ch in ",:":
                self.i += 1
                continue
            else:
                m = _SCALAR.match(self.text, self.i)
                if m is None:
                    raise ValueError("value expected")
                self.i = m.end()
            if depth <= 0:
                return


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def locate(text: str, path: tuple) -> tuple[int, int]:
    """(line, column) of the value at ``path`` in the JSON ``text`` (see the module doc)."""
    s = _Scanner(text)
    try:
        s.ws()
        best = s.i
        for step in path:
            s.ws()
            ch = text[s.i: s.i + 1]
            if ch == "{" and isinstance(step, str):
                s.i += 1
                found = False
                while True:
                    s.ws()
                    if text[s.i: s.i + 1] == "}":
                        break
                    key = s.string()
                    s.ws()
                    s.i += 1  # ':'
                    s.ws()
                    if key == step:
                        found = True
                        break
                    s.skip()
                    s.ws()
                    if text[s.i: s.i + 1] == ",":
                        s.i += 1
                if not found:
                    return _position(text, best)
            elif ch == "[" and isinstance(step, int):
                s.i += 1
                for _ in range(step):
                    s.ws()
                    if text[s.i: s.i + 1] == "]":
                        return _position(text, best)
                    s.skip()
                    s.ws()
                    if text[s.i: s.i + 1] == ",":
                        s.i += 1
                s.ws()
                if text[s.i: s.i + 1] == "]":
                    return _position(text, best)
            else:
                return _position(text, best)
            s.ws()
            best = s.i
        return _position(text, best)
    except (ValueError, IndexError):
        return _position(text, 0)
