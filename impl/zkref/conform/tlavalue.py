"""Values as TLC prints them, parsed into Python (used to read TLC behaviours back as JSON).

Rules:
- Strings become `str`, model values `ModelValue`, integers `int`, booleans `bool`,
  `<<...>>` a `tuple`, `{...}` a `TlaSet`, `[f |-> v]` a `dict`, `(k :> v @@ ...)` a `TlaFn`.
- Only what TLC prints; no expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TlaValue = object  # int | bool | str | ModelValue | tuple | TlaSet | TlaFn | dict[str, TlaValue]


@dataclass(frozen=True, slots=True)
class ModelValue:
    name: str


@dataclass(frozen=True, slots=True)
class TlaSet:
    items: tuple[TlaValue, ...]


@dataclass(frozen=True, slots=True)
class TlaFn:
    pairs: tuple[tuple[TlaValue, TlaValue], ...]


_TOKEN = re.compile(
    r'\s*(?:(<<|>>|\|->|:>|@@|[\[\]{}(),])|("(?:[^"\\]|\\.)*")|(-?\d+)|([A-Za-z_][A-Za-z0-9_]*))'
)


class TlaParseError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TlaParseError(f"cannot read TLA+ value at {text[pos : pos + 30]!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


def parse_value(text: str) -> TlaValue:
    toks = _tokens(text)
    try:
        value, i = _parse(toks, 0)
    except IndexError:
        raise TlaParseError("unexpected end of value") from None
    if i != len(toks):
        raise TlaParseError(f"trailing text after a value: {' '.join(toks[i : i + 5])}")
    return value


def _expect(toks: list[str], i: int, tok: str) -> int:
    if i >= len(toks) or toks[i] != tok:
        got = toks[i] if i < len(toks) else "end"
        raise TlaParseError(f"expected {tok!r}, got {got!r}")
    return i + 1


def _items(toks: list[str], i: int, close: str) -> tuple[list[TlaValue], int]:
    items: list[TlaValue] = []
    if i < len(toks) and toks[i] == close:
        return items, i + 1
    while True:
        v, i = _parse(toks, i)
        items.append(v)
        if i < len(toks) and toks[i] == ",":
            i += 1
            continue
        return items, _expect(toks, i, close)


def _parse(toks: list[str], i: int) -> tuple[TlaValue, int]:
    if i >= len(toks):
        raise TlaParseError("unexpected end of value")
    t = toks[i]
    if t == "<<":
        items, j = _items(toks, i + 1, ">>")
        return tuple(items), j
    if t == "{":
        items, j = _items(toks, i + 1, "}")
        return TlaSet(tuple(items)), j
    if t == "[":
        rec: dict[str, TlaValue] = {}
        j = i + 1
        if j < len(toks) and toks[j] == "]":
            return rec, j + 1
        while True:
            name = toks[j]
            j = _expect(toks, j + 1, "|->")
            v, j = _parse(toks, j)
            rec[name] = v
            if toks[j] == ",":
                j += 1
                continue
            return rec, _expect(toks, j, "]")
    if t == "(":
        pairs: list[tuple[TlaValue, TlaValue]] = []
        j = i + 1
        while True:
            k, j = _parse(toks, j)
            j = _expect(toks, j, ":>")
            v, j = _parse(toks, j)
            pairs.append((k, v))
            if toks[j] == "@@":
                j += 1
                continue
            return TlaFn(tuple(pairs)), _expect(toks, j, ")")
    if t.startswith('"'):
        return t[1:-1].replace('\\"', '"').replace("\\\\", "\\"), i + 1
    if t == "TRUE":
        return True, i + 1
    if t == "FALSE":
        return False, i + 1
    if t[0] == "-" or t[0].isdigit():
        return int(t), i + 1
    if t[0].isalpha() or t[0] == "_":
        return ModelValue(t), i + 1
    raise TlaParseError(f"unexpected {t!r}")
