"""Znode path rules (ZooKeeper: `common.PathUtils.validatePath`).

Rules:
- a path is absolute ("/" is the root), has no empty, "." or ".." component and no trailing "/";
- NUL, C0/C1 control characters, U+D800..U+F8FF and U+FFF0..U+FFFF are refused; ZooKeeper looks at
  UTF-16 units, so any character beyond the BMP (a surrogate pair in Java) is refused as well;
- a sequential create is validated with a "1" appended (the suffix the server will add);
- the reason text matches ZooKeeper's, including the "@index" of the offending unit.
"""

from __future__ import annotations

import re

__all__ = ["parent_of", "validate_path"]


def _invalid_char(c: str) -> bool:
    o = ord(c)
    return (
        0 < o <= 0x1F
        or 0x7F <= o <= 0x9F
        or 0xD800 <= o <= 0xF8FF
        or o >= 0xFFF0  # includes everything beyond the BMP (surrogates in Java)
    )


# Fast path: components of printable ASCII that do not start with "." are always valid.
_PLAIN = re.compile(r"(?:/[\x20-\x2d\x30-\x7e][\x20-\x2e\x30-\x7e]*)+")


def validate_path(path: str, sequential: bool = False) -> str | None:
    """None if `path` is a valid znode path, else ZooKeeper's reason (the server answers
    BadArguments)."""
    if sequential:
        path = path + "1"
    if _PLAIN.fullmatch(path) is not None:
        return None
    return _validate_full(path)


def _validate_full(path: str) -> str | None:
    n = len(path)
    if n == 0:
        return "Path length must be > 0"
    if path[0] != "/":
        return "Path must start with / character"
    if n == 1:
        return None
    if path[-1] == "/":
        return "Path must not end with / character"
    reason: str | None = None
    lastc = "/"
    for i in range(1, n):
        c = path[i]
        if c == "\0":
            reason = f"null character not allowed @{i}"
            break
        if c == "/" and lastc == "/":
            reason = f"empty node name specified @{i}"
            break
        if c == "." and lastc == ".":
            if path[i - 2] == "/" and (i + 1 == n or path[i + 1] == "/"):
                reason = f"relative paths not allowed @{i}"
                break
        elif c == ".":
            if path[i - 1] == "/" and (i + 1 == n or path[i + 1] == "/"):
                reason = f"relative paths not allowed @{i}"
                break
        elif _invalid_char(c):
            reason = f"invalid character @{i}"
            break
        lastc = c
    if reason is not None:
        return f'Invalid path string "{path}" caused by {reason}'
    return None


def parent_of(path: str) -> str:
    """ZooKeeper's parent name: everything before the last "/" ("" for a child of the root).

    The caller has checked that `path` contains a "/"."""
    return path[: path.rindex("/")]
