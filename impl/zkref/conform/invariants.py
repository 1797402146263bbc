"""Python twins of the invariants of `spec/Zab.tla`, same names, same meaning.

Each takes the spec's variables (`ZabVars`, built by a refinement mapping such as
`zkref.sim.zab_cluster.spec_vars`) and returns None when it holds, else what broke it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zkref.core.zab.messages import Sid, Txn
from zkref.core.zab.zxid import zxid_counter, zxid_epoch


@dataclass(frozen=True, slots=True)
class ZabVars:
    """The spec's variables (those the invariants read), server by server."""

    servers: tuple[Sid, ...]
    state: dict[Sid, str]
    zab_state: dict[Sid, str]
    online: dict[Sid, bool]
    leader_of: dict[Sid, Sid | None]
    accepted_epoch: dict[Sid, int]
    current_epoch: dict[Sid, int]
    history: dict[Sid, tuple[Txn, ...]]
    disk: dict[Sid, tuple[Txn, ...]]
    last_committed: dict[Sid, int]
    nl_phase: dict[Sid, str]
    proposed: frozenset[Txn]
    committed: frozenset[Txn]
    epoch_leader: frozenset[tuple[int, Sid]]

    def delivered(self, i: Sid) -> tuple[Txn, ...]:
        return self.history[i][: self.last_committed[i]]

    def is_quorum(self, sids: set[Sid]) -> bool:
        return 2 * len(sids) > len(self.servers)


def is_prefix(s: Sequence[Txn], t: Sequence[Txn]) -> bool:
    return len(s) <= len(t) and tuple(s) == tuple(t[: len(s)])


def before(s: Sequence[Txn], a: Txn, b: Txn) -> bool:
    """The spec's Before: some a strictly precedes some b in s."""
    if a not in s or b not in s:
        return False
    first_a = s.index(a)
    last_b = len(s) - 1 - list(reversed(s)).index(b)
    return first_a < last_b


def _z(t: Txn) -> str:
    return f"({zxid_epoch(t.zxid)},{zxid_counter(t.zxid)})"


def Leadership(v: ZabVars) -> str | None:
    """One established leader per epoch."""
    by_epoch: dict[int, set[Sid]] = {}
    for e, s in v.epoch_leader:
        by_epoch.setdefault(e, set()).add(s)
    bad = {e: sorted(ss) for e, ss in by_epoch.items() if len(ss) > 1}
    return f"epochs with two leaders: {bad}" if bad else None


def PrefixConsistency(v: ZabVars) -> str | None:
    """Delivered sequences never diverge."""
    for i in v.servers:
        for j in v.servers:
            di, dj = v.delivered(i), v.delivered(j)
            if i < j and not (is_prefix(di, dj) or is_prefix(dj, di)):
                return (
                    f"delivered of {i} {[_z(t) for t in di]} and of {j} {[_z(t) for t in dj]}"
                    " diverge"
                )
    return None


def Integrity(v: ZabVars) -> str | None:
    """Only txns that a leader broadcast are delivered."""
    for i in v.servers:
        extra = [t for t in v.delivered(i) if t not in v.proposed]
        if extra:
            return f"server {i} delivered {[_z(t) for t in extra]}, never proposed"
    return None


def Agreement(v: ZabVars) -> str | None:
    """If i delivers a and j delivers b, then i delivers b or j delivers a."""
    for i in v.servers:
        for j in v.servers:
            di, dj = set(v.delivered(i)), set(v.delivered(j))
            only_i, only_j = di - dj, dj - di
            if only_i and only_j:
                a, b = min(only_i, key=lambda t: t.zxid), min(only_j, key=lambda t: t.zxid)
                return f"{i} delivered {_z(a)} but not {_z(b)}; {j} the other way round"
    return None


def _first(s: Sequence[Txn]) -> dict[Txn, int]:
    out: dict[Txn, int] = {}
    for k, t in enumerate(s):
        out.setdefault(t, k)
    return out


def _last(s: Sequence[Txn]) -> dict[Txn, int]:
    return {t: k for k, t in enumerate(s)}


def TotalOrder(v: ZabVars) -> str | None:
    """If some server delivers a before b, any server that delivers b delivers a before b."""
    ds = {i: v.delivered(i) for i in v.servers}
    firsts = {i: _first(d) for i, d in ds.items()}
    lasts = {i: _last(d) for i, d in ds.items()}
    for i in v.servers:
        di, fi, li = ds[i], firsts[i], lasts[i]
        for j in v.servers:
            if j == i:
                continue
            fj, lj = firsts[j], lasts[j]
            for b in li:
                if b not in lj:
                    continue
                for a in di[: li[b]]:
                    # Before(di, a, b) holds; Before(dj, a, b) must too
                    if fi[a] < li[b] and not (a in fj and fj[a] < lj[b]):
                        return f"{i} delivers {_z(a)} before {_z(b)}, {j} does not"
    return None


def LocalPrimaryOrder(v: ZabVars) -> str | None:
    """A leader's proposals are delivered in the order it proposed them, with no gaps."""
    by_epoch: dict[int, list[Txn]] = {}
    for a in v.proposed:
        by_epoch.setdefault(a.epoch, []).append(a)
    for i in v.servers:
        di = v.delivered(i)
        fi, li = _first(di), _last(di)
        for b, lb in li.items():
            for a in by_epoch.get(b.epoch, ()):
                if a.counter < b.counter and not (a in fi and fi[a] < lb):
                    return f"server {i} delivers {_z(b)} without {_z(a)} before it"
    return None


def GlobalPrimaryOrder(v: ZabVars) -> str | None:
    """Txns of an older epoch are delivered before txns of a newer epoch."""
    for i in v.servers:
        di = v.delivered(i)
        for x in range(len(di) - 1):
            if di[x].epoch > di[x + 1].epoch:
                return f"server {i} delivers {_z(di[x])} before {_z(di[x + 1])}"
    return None


def PrimaryIntegrity(v: ZabVars) -> str | None:
    """An established leader holds every txn delivered anywhere in an earlier epoch."""
    for i in v.servers:
        if v.state[i] != "LEADING" or v.zab_state[i] != "BROADCAST":
            continue
        hi = set(v.history[i])
        for j in v.servers:
            for a in v.delivered(j):
                if a.epoch < v.current_epoch[i] and a not in hi:
                    e = v.current_epoch[i]
                    return f"leader {i} of epoch {e} lacks {_z(a)} ({j} delivered it)"
    return None


def CommittedLogDurability(v: ZabVars) -> str | None:
    """A committed txn is on the disk of a quorum, so no crash or sync can lose it."""
    disks = {j: set(v.disk[j]) for j in v.servers}
    for t in sorted(v.committed, key=lambda t: t.zxid):
        on = {j for j in v.servers if t in disks[j]}
        if not v.is_quorum(on):
            return f"committed {_z(t)} is durable only on {sorted(on)}"
    return None


def ProcessConsistency(v: ZabVars) -> str | None:
    """After NEWLEADER, a follower's log is a prefix of its leader's."""
    for i in v.servers:
        j = v.leader_of[i]
        if (
            v.state[i] == "FOLLOWING"
            and v.nl_phase[i] != "none"
            and j is not None
            and v.state[j] == "LEADING"
            and v.online[j]
            and not is_prefix(v.history[i], v.history[j])
        ):
            return (
                f"follower {i} log {[_z(t) for t in v.history[i]]} is not a prefix of leader"
                f" {j}'s {[_z(t) for t in v.history[j]]}"
            )
    return None


INVARIANTS: dict[str, Callable[[ZabVars], str | None]] = {
    f.__name__: f
    for f in (
        Leadership,
        PrefixConsistency,
        Integrity,
        Agreement,
        TotalOrder,
        LocalPrimaryOrder,
        GlobalPrimaryOrder,
        PrimaryIntegrity,
        CommittedLogDurability,
        ProcessConsistency,
    )
}


def violations(v: ZabVars) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, inv in INVARIANTS.items():
        detail = inv(v)
        if detail is not None:
            out[name] = detail
    return out


# ---------------------------------------------------------------------------------------------
# spec/Sessions.tla


@dataclass(frozen=True, slots=True)
class SessionTxn:
    """An entry of Sessions.tla's `log`: type is createSession | closeSession | create."""

    type: str
    sid: int
    conn: int  # the connection that sent it (0: the tracker's expiry)


@dataclass(frozen=True, slots=True)
class SessionsVars:
    """Sessions.tla's variables (those its invariants read). `ephemerals[s]` stands for the
    spec's Ephemerals(s) and is read from server s's data tree, not replayed from the log."""

    servers: tuple[int, ...]
    log: tuple[SessionTxn, ...]
    applied: dict[int, int]
    ephemerals: dict[int, frozenset[tuple[str, int]]]
    tracker: frozenset[int]
    cstate: dict[int, str]
    csid: dict[int, int]
    cserver: dict[int, int]
    last_zxid_seen: dict[int, int]
    conns: frozenset[tuple[int, int, int]]  # (id, sid, at)
    cwatch: dict[int, int]  # -1: no watch
    # MZxid(s): the last applied log entry that created or deleted Path at s (the spec's
    # Touches: a create, or the close of the session that owned it)
    mzxid: dict[int, int]
    # the spec's ExistWatch(c) and "Ephemerals(s) /= {}", read off the implementation
    # (WatchNotLost's exception: ZooKeeper's documented exist-watch hole)
    cwatch_on_absent: dict[int, bool]  # the watch was set while the node did not exist
    node_exists: dict[int, bool]  # server s has the node now

    def live(self, s: int) -> set[int]:
        """Live(s): the sessions of the log prefix server s applied."""
        out: set[int] = set()
        for t in self.log[: self.applied[s]]:
            if t.type == "createSession":
                out.add(t.sid)
            elif t.type == "closeSession":
                out.discard(t.sid)
        return out


def SessionNeverRevived(v: SessionsVars) -> str | None:
    """A closed session never comes back: nothing of it after its closeSession, and no client
    is connected on it where it is closed.

    A repeated closeSession is allowed, as in the spec: ZooKeeper's PrepRequestProcessor does
    not check the session of a closeSession (the tracker's expiry queues one without owning
    it), so a client's close forwarded before the tracker expired the session is logged after
    the expiry's closeSession; it changes nothing and revives nothing (witness model
    MCSessions_witness_NoRepeatedClose)."""
    closed: dict[int, int] = {}
    for k, t in enumerate(v.log, 1):
        if t.sid in closed and t.type != "closeSession":
            return f"log[{k}] {t.type} of session {t.sid:#x} after its closeSession"
        if t.type == "closeSession":
            closed[t.sid] = k
    for c, st in v.cstate.items():
        if st == "CONNECTED" and v.csid[c] not in v.live(v.cserver[c]):
            return f"client {c} connected on session {v.csid[c]:#x}, not live at {v.cserver[c]}"
    return None


def NoOrphanEphemeral(v: SessionsVars) -> str | None:
    """In every server's applied state, each ephemeral's owner is a live session."""
    for s in v.servers:
        live = v.live(s)
        for path, owner in sorted(v.ephemerals[s]):
            if owner not in live:
                return f"server {s}: ephemeral {path} of session {owner:#x}, not live"
    return None


def MonotonicClientView(v: SessionsVars) -> str | None:
    """A client never talks to a server that is behind a zxid it has seen."""
    for c, st in v.cstate.items():
        s = v.cserver.get(c)
        if st == "CONNECTED" and s is not None and v.last_zxid_seen[c] > v.applied[s]:
            return f"client {c} saw log[{v.last_zxid_seen[c]}], server {s} applied {v.applied[s]}"
    return None


def SessionMovedSafety(v: SessionsVars) -> str | None:
    """A request from a connection is never executed after its session moved to a newer
    connection (SESSIONMOVED)."""
    for k, t in enumerate(v.log, 1):
        if t.type != "create":
            continue
        for rid, sid, at in sorted(v.conns):
            if sid == t.sid and rid > t.conn and at < k:
                return (
                    f"log[{k}] create from connection {t.conn} of session {sid:#x}, which"
                    f" connection {rid} took over at log length {at}"
                )
    return None


def WatchNotLost(v: SessionsVars) -> str | None:
    """A connected client's watch is armed only if its server applied no change to the node
    since the watch was set (otherwise the event was delivered).

    One exception, as in the spec: ZooKeeper's documented hole (Programmer's Guide, ZooKeeper
    Watches): "a watch for the existence of a znode not yet created will be missed if the znode
    is created and deleted while disconnected" -- setWatches re-arms an exist watch and fires it
    only if the node exists now (spec: ClientReconnect, ExistWatch; witness model
    MCSessions_witness_NoExistWatchHole)."""
    for c, st in v.cstate.items():
        s = v.cserver.get(c)
        if st == "CONNECTED" and v.cwatch[c] != -1 and s is not None and v.mzxid[s] > v.cwatch[c]:
            if v.cwatch_on_absent[c] and not v.node_exists[s]:
                continue  # created and deleted while disconnected: missed, as documented
            return (
                f"client {c}'s watch set at log[{v.cwatch[c]}] still armed; server {s} changed"
                f" the node at log[{v.mzxid[s]}]"
            )
    return None


SESSIONS_INVARIANTS: dict[str, Callable[[SessionsVars], str | None]] = {
    f.__name__: f
    for f in (
        SessionNeverRevived,
        NoOrphanEphemeral,
        MonotonicClientView,
        SessionMovedSafety,
        WatchNotLost,
    )
}
