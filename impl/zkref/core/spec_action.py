"""The `@spec_action` tag: records which TLA+ action a core method implements.

It only records the name (cores never import the checkers); `zkref.conform` reads `REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

# action name -> qualified names of the methods that implement it
REGISTRY: dict[str, list[str]] = {}


def spec_action(name: str) -> Callable[[F], F]:
    def tag(fn: F) -> F:
        REGISTRY.setdefault(name, []).append(fn.__qualname__)
        fn.__spec_action__ = name  # type: ignore[attr-defined]
        return fn

    return tag
