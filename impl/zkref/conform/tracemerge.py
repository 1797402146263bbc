"""`zkref trace merge DIR`: one Zab trace from the member files of a real ensemble run.

Each member of a traced run (`zkref.server.tracing`, `ZKREF_TRACE_DIR`) writes
`member-<sid>.ndjson`: its Zab cores' records, its role changes, its starts and stops, each with
a Lamport clock. This module orders them into one trace that `zkref trace validate` checks
against spec/Zab.tla.

Why Zab with the election as an oracle, not FastLeaderElection as well: Zab.tla elects with
the oracle actions ElectLeader(i, Q) / FollowLeader(i, j), and the simulator's Zab traces
(`zkref.sim.zab_cluster`) use exactly those, so the real run is checked against the same spec
the same way. The members' FLE notifications are not recorded: the FLE core's records are
checked against FastLeaderElection.tla in the simulator already, and two known spec gaps (the
notification resend timer, a better vote during the finalize wait; docs/trace-validation.md)
would reject almost every real election, hiding everything after it.

Rules of the mapping (each one is something the spec can do; nothing is skipped silently):
- order: by (lamport, sid); a member's own lines keep their file order;
- the first `start` of each member is an `Init` record with its spec variables as loaded;
- `LEADING` of i at position a: Q = {i} and every member whose latest role event before i's
  next record is an unclaimed `FOLLOWING(i)`; one `ElectLeader(i, Q)` stands where the last of
  those decisions stands (no member of Q has a record between its decision and that point: a
  follower's next record needs the leader's LEADERINFO, which comes after i's next record);
- any other `FOLLOWING(j)` while j leads (in the spec's view) is `FollowLeader(f, j)`; one
  while j does not lead is dropped (the member went LOOKING again without a step);
- a member whose incarnation ends without a clean stop (kill -9), or with a stop followed by a
  later start, crashed: `NodeCrash(m)` goes after all of m's lines and after every line of its
  followers before they noticed (their next `LOOKING`); their lines after that `LOOKING`, and
  m's next incarnation, move behind the crash (they are concurrent with m's last lines in
  Lamport order, and causally after the crash in real time). The next `start` is `NodeStart`;
- `LOOKING` of a follower whose leader is alive and does not time out next is the link
  breaking: `PartitionStart(f, j)` then `PartitionRecover(f, j)`; other `LOOKING`s are implied
  by the records around them (NodeCrash, LeaderTimeout, LeaderInitLimitTimeout) and dropped;
- the run ends at the first stop after which its member never starts again (stopping the
  ensemble is not a spec action: what members do while the others go away is cut).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkref.conform.trace import SCHEMA, TraceFormatError

# a leader's records after which its followers go LOOKING in the same spec step
_LEADER_GIVES_UP = frozenset({"LeaderTimeout", "LeaderInitLimitTimeout"})

MEMBER_GLOB = "member-*.ndjson"


@dataclass(slots=True)
class Item:
    """One line of a member file (or a step the merger adds)."""

    lamport: int
    node: int
    inc: int  # which incarnation (start) of the member
    obj: dict[str, Any]
    synthetic: str = ""  # "NodeCrash" for the crashes the merger places

    @property
    def event(self) -> str:
        return str(self.obj.get("event", ""))

    @property
    def action(self) -> str:
        return str(self.obj.get("action", ""))

    @property
    def is_record(self) -> bool:
        return "action" in self.obj


@dataclass(slots=True)
class Member:
    sid: int
    servers: tuple[int, ...]
    items: list[Item] = field(default_factory=list)


def read_member(path: Path) -> Member:
    lines = path.read_text().splitlines()
    if not lines:
        raise TraceFormatError(f"{path}: empty member file")
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError as e:
        raise TraceFormatError(f"{path}: line 1: not JSON ({e.msg})") from None
    if not isinstance(head, dict) or head.get("kind") != "member":
        raise TraceFormatError(f'{path}: line 1 must be a member header ("kind": "member")')
    if head.get("schema") != SCHEMA or head.get("spec") != "Zab":
        raise TraceFormatError(f"{path}: line 1: unsupported schema/spec")
    if head.get("observer"):
        raise TraceFormatError(
            f"{path}: member {head.get('sid')} is an observer; Zab.tla has none (trace an "
            "ensemble of participants only)"
        )
    m = Member(int(head["sid"]), tuple(int(s) for s in head["servers"]))
    inc = 0
    for n, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            if n == len(lines):
                break  # the line a kill -9 cut short
            raise TraceFormatError(f"{path}: line {n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("lamport"), int):
            raise TraceFormatError(f"{path}: line {n}: a line needs an int 'lamport'")
        if obj.get("node") != m.sid:
            raise TraceFormatError(f"{path}: line {n}: node is not {m.sid}")
        if "action" not in obj and "event" not in obj:
            raise TraceFormatError(f"{path}: line {n}: neither 'action' nor 'event'")
        if obj.get("event") == "start":
            inc += 1
        if inc == 0:
            raise TraceFormatError(f"{path}: line {n}: a line before the first start")
        if m.items and obj["lamport"] <= m.items[-1].lamport:
            raise TraceFormatError(f"{path}: line {n}: the Lamport clock went back")
        m.items.append(Item(obj["lamport"], m.sid, inc, obj))
    return m


def read_members(d: Path) -> list[Member]:
    paths = sorted(d.glob(MEMBER_GLOB))
    if not paths:
        raise TraceFormatError(f"{d}: no {MEMBER_GLOB} files")
    members = [read_member(p) for p in paths]
    servers = {m.servers for m in members}
    if len(servers) != 1:
        raise TraceFormatError(f"{d}: the members disagree on the servers: {sorted(servers)}")
    return members


# --------------------------------------------------------------------------- ordering


def _cut(order: list[Item], members: list[Member]) -> list[Item]:
    """Drop everything from the first final stop on (the run is over)."""
    final = {id(m.items[-1]) for m in members if m.items and m.items[-1].event == "stop"}
    for k, it in enumerate(order):
        if id(it) in final:
            return order[:k]
    return order


def _incarnations(order: list[Item]) -> dict[tuple[int, int], list[int]]:
    out: dict[tuple[int, int], list[int]] = {}
    for k, it in enumerate(order):
        if not it.synthetic:
            out.setdefault((it.node, it.inc), []).append(k)
    return out


def _place_crash(order: list[Item], m: int, inc: int) -> list[Item]:
    """Insert NodeCrash(m) ending incarnation `inc` of m (see the module's rules)."""
    pos = _incarnations(order)
    mine = pos[(m, inc)]
    last = mine[-1]
    following: dict[int, int] = {}  # member -> position of its last FOLLOWING(m)
    nxt = pos.get((m, inc + 1))
    limit = nxt[0] if nxt else len(order)
    for k in range(mine[0], limit):
        it = order[k]
        if it.node == m or it.synthetic:
            continue
        if it.event == "FOLLOWING" and it.obj.get("leader") == m:
            following[it.node] = k  # its last decision for m in this incarnation of m
    before = set(mine)
    after: set[int] = set(nxt or ())
    for f, c in following.items():
        own = [k for k in range(c, len(order)) if order[k].node == f and not order[k].synthetic]
        looking = next((k for k in own if order[k].event == "LOOKING"), None)
        if looking is None:
            before.update(own)
            continue
        before.update(k for k in own if k < looking)
        after.update(k for k in own if k >= looking)
    # packets from m processed by others after m's last line: before the crash too
    for k in range(last, limit):
        it = order[k]
        params = it.obj.get("params")
        if it.node != m and isinstance(params, dict) and params.get("j") == m and k not in after:
            before.add(k)
    p = max(before)
    crash = Item(order[last].lamport, m, inc, {"action": "NodeCrash"}, synthetic="NodeCrash")
    head = [order[k] for k in range(p + 1) if k not in after]
    moved = [order[k] for k in range(p + 1) if k in after]
    return [*head, crash, *moved, *order[p + 1 :]]


def order_items(members: list[Member]) -> list[Item]:
    order = sorted((it for m in members for it in m.items), key=lambda i: (i.lamport, i.node))
    order = _cut(order, members)
    # incarnations that ended by a crash: all but the last, and the last one without a stop
    crashed: list[tuple[int, int]] = []
    for m in members:
        incs = sorted({it.inc for it in m.items})
        for n in incs:
            lines = [it for it in m.items if it.inc == n]
            final = n == incs[-1]
            if not final or lines[-1].event != "stop":
                crashed.append((m.sid, n))
    present = {(it.node, it.inc) for it in order}
    ends = {key: max(ks) for key, ks in _incarnations(order).items()}
    for m_sid, n in sorted((c for c in crashed if c in present), key=lambda c: ends[c]):
        order = _place_crash(order, m_sid, n)
    return order


# --------------------------------------------------------------------------- mapping


def _next_record(order: list[Item], start: int, node: int) -> int:
    """Position of `node`'s next record (or LOOKING/stop event) after `start`; len at the end."""
    for k in range(start + 1, len(order)):
        it = order[k]
        if it.node == node and (it.is_record or it.event in ("LOOKING", "stop", "start")):
            return k
    return len(order)


def _fsync_proved(
    order: list[Item], k: int, m: int, hist_len: dict[int, int], disk_len: dict[int, int]
) -> bool:
    """m crashes at k: does its next start find the whole history on disk though the records
    end with less fsynced? Then the fsync (or the OS, for a kill -9) made it durable and the
    NodeFsyncLog record died with the process: the merge adds that step before the crash."""
    if m not in hist_len or m not in disk_len or hist_len[m] == disk_len[m]:
        return False
    for it in order[k + 1 :]:
        if it.node == m and it.event == "start":
            post = it.obj.get("post")
            return isinstance(post, dict) and post.get("disk") == hist_len[m]
    return False


def map_items(order: list[Item]) -> list[dict[str, Any]]:
    """The spec records, in order (without the header)."""
    # elections first: which FOLLOWING decisions join which ElectLeader, and where it stands
    claimed: set[int] = set()
    elect_at: dict[int, list[tuple[int, list[int]]]] = {}  # position -> (LEADING pos, Q)
    for a, it in enumerate(order):
        if it.event != "LEADING":
            continue
        b = _next_record(order, a, it.node)
        latest: dict[int, int] = {}
        for k in range(b):
            o = order[k]
            if o.node != it.node and (o.event in ("FOLLOWING", "LEADING", "LOOKING", "start")):
                latest[o.node] = k
            if o.synthetic == "NodeCrash":
                latest[o.node] = k
        q = [it.node]
        at = a
        for f, c in sorted(latest.items()):
            o = order[c]
            if o.event == "FOLLOWING" and o.obj.get("leader") == it.node and c not in claimed:
                claimed.add(c)
                q.append(f)
                at = max(at, c)
        elect_at.setdefault(at, []).append((a, sorted(q)))

    out: list[dict[str, Any]] = []
    hist_len: dict[int, int] = {}  # the spec's history and disk lengths, as the records say
    disk_len: dict[int, int] = {}
    role: dict[int, tuple[str, int | None]] = {}  # the spec's view: LOOKING / LEADING / FOLLOWING
    online: dict[int, bool] = {}

    def rec(it: Item, action: str, params: Any = None, post: Any = None) -> None:
        r: dict[str, Any] = {"lamport": it.lamport, "node": it.node, "action": action}
        if params is not None:
            r["params"] = params
        r["post"] = post if post is not None else {}
        out.append(r)
        n = it.node
        if isinstance(r["post"].get("history"), list):
            hist_len[n] = len(r["post"]["history"])
        if isinstance(r["post"].get("disk"), int):
            disk_len[n] = r["post"]["disk"]
        if action == "NodeFsyncLog" and n in hist_len:
            disk_len[n] = hist_len[n]
        elif action == "NodeCrash" and n in disk_len:
            hist_len[n] = disk_len[n]

    def go_looking(sids: Iterable[int]) -> None:
        for s in sids:
            role[s] = ("LOOKING", None)

    def followers(j: int) -> list[int]:
        return [s for s, r in role.items() if r == ("FOLLOWING", j)]

    for k, it in enumerate(order):
        if it.synthetic == "NodeCrash":
            if _fsync_proved(order, k, it.node, hist_len, disk_len):
                rec(it, "NodeFsyncLog", [])
            rec(it, "NodeCrash", [])
            if role.get(it.node, ("", None))[0] == "LEADING":
                go_looking(followers(it.node))
            go_looking([it.node])
            online[it.node] = False
        elif it.event == "start":
            if it.node not in online:
                rec(it, "Init", None, it.obj.get("post", {}))
                role[it.node] = ("LOOKING", None)
            else:
                rec(it, "NodeStart", [], it.obj.get("post", {}))
            online[it.node] = True
        elif it.event == "FOLLOWING" and k not in claimed:
            j = it.obj.get("leader")
            if isinstance(j, int) and role.get(j, ("", None))[0] == "LEADING":
                rec(it, "FollowLeader", [j], it.obj.get("post", {}))
                role[it.node] = ("FOLLOWING", j)
        elif it.event == "LOOKING":
            r = role.get(it.node, ("LOOKING", None))
            if r[0] == "FOLLOWING" and r[1] is not None:
                j = r[1]
                b = _next_record(order, k, j) if j is not None else len(order)
                times_out = b < len(order) and order[b].action in _LEADER_GIVES_UP
                if not times_out:
                    rec(it, "PartitionStart", [j])
                    rec(it, "PartitionRecover", [j])
                    role[it.node] = ("LOOKING", None)
        elif it.is_record:
            if it.action in _LEADER_GIVES_UP:
                go_looking([*followers(it.node), it.node])
            rec(it, it.action, it.obj.get("params"), it.obj.get("post"))
        for _a, q in elect_at.get(k, []):
            leader = order[_a]
            rec(leader, "ElectLeader", q, leader.obj.get("post", {}))
            role[leader.node] = ("LEADING", None)
            for f in q:
                if f != leader.node:
                    role[f] = ("FOLLOWING", leader.node)
    for n, line in enumerate(out):
        line["seq"] = n
    return out


def merge(d: Path) -> list[str]:
    """The merged trace of the member files in `d`, as NDJSON lines (header first)."""
    members = read_members(d)
    servers = list(members[0].servers)
    head = {
        "kind": "header",
        "schema": SCHEMA,
        "spec": "Zab",
        "servers": servers,
        "source": "zkref-ensemble",
        "members": sorted(m.sid for m in members),
    }
    records = compact_history(map_items(order_items(members)))
    head["constants"] = bounds(records)
    return [json.dumps(head)] + [json.dumps(r) for r in records]


# records of a node that leave its history as it was without saying so
_KEEPS_HISTORY = frozenset({"NodeFsyncLog", "ignored"})


def compact_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each record's `history` as `{"keep": p, "tail": [...]}` when its first p entries are
    those of the node's previous record (`tracemap.Seq`): the same constraints, but the
    translated module grows with the number of steps, not steps times log length (a run with
    100 writes has ~1000 steps, each with a history of ~100 entries)."""
    last: dict[int, list[Any]] = {}
    out: list[dict[str, Any]] = []
    for r in records:
        node, post = r.get("node"), r.get("post")
        h = post.get("history") if isinstance(post, dict) else None
        if not isinstance(node, int) or r["action"] == "Init":
            if isinstance(node, int) and isinstance(h, list):
                last[node] = h
            out.append(r)
            continue
        if not isinstance(h, list):
            if r["action"] not in _KEEPS_HISTORY:
                last.pop(node, None)  # NodeCrash: the history is now the disk, not given
            out.append(r)
            continue
        prev = last.get(node)
        last[node] = h
        if prev is None:
            out.append(r)
            continue
        keep = 0
        while keep < min(len(prev), len(h)) and prev[keep] == h[keep]:
            keep += 1
        assert isinstance(post, dict)
        out.append(r | {"post": post | {"history": {"keep": keep, "tail": h[keep:]}}})
    return out


# the translator's default for each bound (zkref.conform.tracemap); a run may need more
DEFAULT_BOUND = 100


def bounds(records: list[dict[str, Any]]) -> dict[str, int]:
    """Zab's bounds, large enough for this run: the translator's defaults (100) would make a
    run with more client requests (or crashes, partitions, epochs) than that diverge at the
    101st, reported as that step's action not being enabled."""

    def count(action: str) -> int:
        return sum(1 for r in records if r["action"] == action)

    epochs = [
        int(r["post"][k])
        for r in records
        for k in ("acceptedEpoch", "currentEpoch")
        if isinstance(r.get("post"), dict) and isinstance(r["post"].get(k), int)
    ]
    return {
        "MaxTxns": max(DEFAULT_BOUND, count("LeaderProcessRequest") + 1),
        "MaxCrashes": max(DEFAULT_BOUND, count("NodeCrash") + 1),
        "MaxPartitions": max(DEFAULT_BOUND, count("PartitionStart") + 1),
        "MaxEpoch": max(DEFAULT_BOUND, max(epochs, default=0) + 1),
    }
