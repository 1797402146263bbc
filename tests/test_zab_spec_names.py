"""The registered `@spec_action` names are the actions of `spec/Zab.tla`'s Next, and each is
implemented by the method its `\\* Impl:` comment names."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import zkref.core.election.fle as fle
import zkref.core.zab.follower as follower
import zkref.core.zab.leader as leader
import zkref.core.zab.peer as peer
import zkref.core.zab.storage as storage
import zkref.sim.zab_cluster as zab_cluster

SPEC = Path(__file__).resolve().parent.parent / "spec" / "Zab.tla"
ZAB_MODULES = {
    "zkref/core/zab/leader.py": leader,
    "zkref/core/zab/follower.py": follower,
    "zkref/core/zab/peer.py": peer,
    "zkref/core/zab/storage.py": storage,
}
# planted-bug-only actions: the implementation has no such step
BUG_ONLY = {"FollowerProcessRequest", "LoseMessage"}
# the spec names the generic network for partitions; the Zab simulator implements the whole
# action (the link fails *and* a follower across it goes LOOKING), so the tag lives there
MOVED = {
    ("PartitionStart", "zkref/sim/network.py Network.partition"): "ZabCluster.partition",
    ("PartitionRecover", "zkref/sim/network.py Network.heal"): "ZabCluster.heal",
}


def next_actions(text: str) -> set[str]:
    body = text.split("\nNext ==", 1)[1]
    body = re.split(r"\n\s*\n|\n\S", body, maxsplit=1)[0]
    return set(re.findall(r":\s*(\w+)\(", body))


def impl_comments(text: str) -> dict[str, tuple[str, str]]:
    """action -> (file, Class.method) from the `\\* Impl:` comment above it (helper operators
    may stand between the comment and the action, as SyncPacket does)."""
    actions = next_actions(text)
    out: dict[str, tuple[str, str]] = {}
    pending: tuple[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("\\* Impl: (none"):
            pending = None
            continue
        m = re.match(r"\\\* Impl: (\S+) (\S+)", line)
        if m:
            pending = (m.group(1), m.group(2))
            continue
        d = re.match(r"(\w+)\(.*==", line)
        if d and pending is not None and d.group(1) in actions:
            out[d.group(1)] = pending
            pending = None
    return out


def registered(module: ModuleType) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for cls in vars(module).values():
        if isinstance(cls, type) and cls.__module__ == module.__name__:
            for name, fn in vars(cls).items():
                action = getattr(fn, "__spec_action__", None)
                if action is not None:
                    out.add((action, f"{cls.__name__}.{name}"))
    return out


def test_parsers_read_the_spec() -> None:
    text = SPEC.read_text()
    assert {"ElectLeader", "NodeFsyncLog", "LoseMessage"} <= next_actions(text)
    assert impl_comments(text)["LeaderProcessACK"] == (
        "zkref/core/zab/leader.py",
        "Leader.process_ack",
    )


def test_registered_actions_are_next_minus_planted_bug_actions() -> None:
    text = SPEC.read_text()
    ours = set().union(*(registered(m) for m in ZAB_MODULES.values()))
    ours |= registered(zab_cluster)
    election = {p for p in registered(fle) if p[0] in {"ElectLeader", "FollowLeader"}}
    names = {a for a, _ in ours | election}
    assert names == next_actions(text) - BUG_ONLY
    assert len(ours) == len({a for a, _ in ours})  # one method per action


def test_each_action_is_implemented_where_its_impl_comment_says() -> None:
    text = SPEC.read_text()
    comments = impl_comments(text)
    for path, module in ZAB_MODULES.items():
        expected = {(a, m) for a, (f, m) in comments.items() if f == path}
        assert registered(module) == expected, path
    assert {(a, f"{f} {m}") for a, (f, m) in comments.items() if f.startswith("zkref/sim/")} == (
        set(MOVED)
    )
    assert registered(zab_cluster) == {(a, impl) for (a, _), impl in MOVED.items()}
    election = {(a, m) for a, (f, m) in comments.items() if f == "zkref/core/election/fle.py"}
    assert election == {p for p in registered(fle) if p[0] in {"ElectLeader", "FollowLeader"}}
    assert {a for a in next_actions(text) if a not in comments} >= BUG_ONLY
