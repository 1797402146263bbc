"""zkref.core.paths: ZooKeeper's PathUtils.validatePath, reason texts included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkref.core.paths import _validate_full, parent_of, validate_path


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/a",
        "/a/b",
        "/a.b",
        "/..a",
        "/a..",
        "/.a",
        "/a/...",
        "/...",
        "/a b",
        "/\u00a0",  # NBSP is allowed
        "/\u00e9t\u00e9",
        "/\uf900",
        "/zookeeper",
    ],
)
def test_valid(path: str) -> None:
    assert validate_path(path) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "Path length must be > 0"),
        ("a", "Path must start with / character"),
        ("a/b", "Path must start with / character"),
        ("/a/", "Path must not end with / character"),
        ("//", "Path must not end with / character"),
        ("//a", "empty node name specified @1"),
        ("/a//b", "empty node name specified @3"),
        ("/.", "relative paths not allowed @1"),
        ("/..", "relative paths not allowed @2"),
        ("/a/./b", "relative paths not allowed @3"),
        ("/a/../b", "relative paths not allowed @4"),
        ("/a/..", "relative paths not allowed @4"),
        ("/a\0b", "null character not allowed @2"),
        ("/a\x01", "invalid character @2"),
        ("/\x1f", "invalid character @1"),
        ("/\x7f", "invalid character @1"),
        ("/x\x9f", "invalid character @2"),
        ("/\ud800", "invalid character @1"),
        ("/\ue000", "invalid character @1"),
        ("/\uf8ff", "invalid character @1"),
        ("/\ufff0", "invalid character @1"),
        ("/\uffff", "invalid character @1"),
        ("/ok\U0001f600", "invalid character @3"),  # a surrogate pair in Java
    ],
)
def test_invalid(path: str, reason: str) -> None:
    got = validate_path(path)
    assert got is not None
    if path and path[0] == "/" and len(path) > 1 and path[-1] != "/":
        assert got == f'Invalid path string "{path}" caused by {reason}'
    else:
        assert got == reason


def test_sequential_appends_a_digit() -> None:
    # a sequential create may name the parent with a trailing "/": the server adds the suffix
    assert validate_path("/a/", sequential=True) is None
    assert validate_path("/a/", sequential=False) is not None
    assert validate_path("/a/lock-", sequential=True) is None
    assert validate_path("/a//", sequential=True) is not None
    assert validate_path("/a/.", sequential=True) is None  # "/a/.1" is a name


def test_parent_of() -> None:
    assert parent_of("/a") == ""
    assert parent_of("/a/b") == "/a"
    assert parent_of("/a/") == "/a"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="/.a-Z~ \x00\x01\x7f\x9f\u00e9\ud7ff\ue000\ufff0\U0001f600", max_size=12))
def test_fast_path_agrees_with_the_full_rules(path: str) -> None:
    assert validate_path(path) == _validate_full(path)
    assert validate_path(path, sequential=True) == _validate_full(path + "1")
