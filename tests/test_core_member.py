"""The ensemble members' client cores (zkref.core.member) wired together without Zab.

`Mini` stands in for the quorum: the leader's `Persist`s are committed in order when the test
says so; each committed txn is applied on the leader (`persisted`) and queued on every learner's
FIFO link, followed by any SYNC the leader sends; `deliver` hands a learner its link in order.
What is checked is the client-visible contract of a learner: forwarded writes answered once,
after commit; reads served locally in session order; sync; sessions owned, moved, expired.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from zkref.core.datatree import DataTree
from zkref.core.effects import (
    Close,
    Effect,
    Forward,
    Notify,
    Persist,
    Reply,
    Revalidate,
    SendConnectResponse,
    SyncReady,
)
from zkref.core.member import LeaderCore, LearnerCore, ReadOnlyCore
from zkref.core.server import CoreConfig, ServerCore
from zkref.core.sessions import session_password
from zkref.wire.constants import CreateMode, Err, EventType, OpCode
from zkref.wire.records import (
    ACL,
    ConnectRequest,
    CreateRequest,
    CreateResponse,
    ErrorTxn,
    GetDataRequest,
    GetDataResponse,
    Id,
    RequestHeader,
    SetDataRequest,
    SyncRequest,
    SyncResponse,
    TxnBody,
    TxnHeader,
)

SECRET = b"ensemble-secret"
OPEN_ACL = (ACL(31, Id("world", "anyone")),)


def cfg(sid: int) -> CoreConfig:
    return CoreConfig(
        server_id=sid,
        tick_time_ms=1000,
        min_session_timeout_ms=2000,
        max_session_timeout_ms=20_000,
        secret=SECRET,
        start_ms=0,
    )


@dataclass
class Mini:
    linearizable: bool = False
    by_zxid: bool = False  # learners match commits by the zxid the leader names (peer_host)
    hold_forwards: bool = False
    held: deque[tuple[int, Forward]] = field(default_factory=deque)
    leader: LeaderCore = field(init=False)
    learners: dict[int, LearnerCore] = field(init=False)
    proposals: deque[tuple[TxnHeader, TxnBody]] = field(default_factory=deque)
    links: dict[int, deque[tuple[str, object]]] = field(default_factory=dict)
    seen: dict[int, list[Effect]] = field(default_factory=dict)  # server -> client effects
    now: int = 0

    def __post_init__(self) -> None:
        self.leader = LeaderCore(cfg(1), tree=DataTree(), linearizable_sync=self.linearizable)
        self.learners = {
            s: LearnerCore(cfg(s), tree=DataTree(), match_by_zxid=self.by_zxid) for s in (2, 3)
        }
        self.links = {2: deque(), 3: deque()}
        self.seen = {1: [], 2: [], 3: []}

    def core(self, server: int) -> ServerCore:
        return self.leader if server == 1 else self.learners[server]

    # --- running effects
    def run(self, server: int, effects: list[Effect]) -> None:
        for e in effects:
            match e:
                case Persist():
                    self.proposals.append((e.hdr, e.txn))
                case Forward():
                    if self.hold_forwards:
                        self.held.append((server, e))
                    else:
                        self.forward(server, e)
                case Revalidate():
                    ok = self.leader.revalidate(server, e.session_id, e.timeout_ms, self.now)
                    self.links[server].append(("revalidated", (e.session_id, ok)))
                case SyncReady():
                    self.links[e.learner].append(("sync", (e.session_id, e.xid)))
                case _:
                    self.seen[server].append(e)

    def forward(self, server: int, e: Forward) -> None:
        effects = self.leader.receive_forwarded(server, e, self.now)
        if self.by_zxid:
            for p in effects:
                if isinstance(p, Persist):
                    self.learners[server].assigned(p.hdr.client_id, p.hdr.cxid, p.hdr.zxid)
        self.run(1, effects)

    def release_forward(self) -> None:
        server, e = self.held.popleft()
        self.forward(server, e)

    def commit(self, n: int | None = None) -> None:
        """Commit the first n proposals (all by default), in order."""
        k = len(self.proposals) if n is None else n
        for _ in range(k):
            hdr, txn = self.proposals.popleft()
            for q in self.links.values():
                q.append(("apply", (hdr, txn)))
            self.run(1, self.leader.persisted(hdr.zxid, self.now))

    def deliver(self, server: int | None = None) -> None:
        for s in [server] if server is not None else sorted(self.links):
            core = self.learners[s]
            q = self.links[s]
            while q:
                kind, arg = q.popleft()
                if kind == "apply":
                    assert isinstance(arg, tuple)
                    self.run(s, core.apply_committed(arg[0], arg[1], self.now))
                elif kind == "sync":
                    assert isinstance(arg, tuple)
                    self.run(s, core.sync_done(arg[0], arg[1], self.now))
                else:
                    assert isinstance(arg, tuple)
                    self.run(s, core.revalidated(arg[0], arg[1], self.now))

    def settle(self) -> None:
        self.commit()
        self.deliver()

    # --- clients
    def connect(self, server: int, conn: int, session: int = 0, read_only: bool = False) -> None:
        core = self.core(server)
        self.run(server, core.connection_opened(conn, "127.0.0.1"))
        pw = session_password(SECRET, session) if session else bytes(16)
        req = ConnectRequest(0, 0, 10_000, session, pw, read_only)
        self.run(server, core.receive_connect(conn, req, self.now))

    def request(self, server: int, conn: int, xid: int, op: OpCode, body: object) -> None:
        core = self.core(server)
        self.run(server, core.receive_request(conn, RequestHeader(xid, int(op)), body, self.now))

    def take(self, server: int) -> list[Effect]:
        out, self.seen[server] = self.seen[server], []
        return out


def replies(effects: list[Effect]) -> list[tuple[int, int, object]]:
    return [(e.xid, e.err, e.body) for e in effects if isinstance(e, Reply)]


def open_session(m: Mini, server: int, conn: int) -> int:
    m.connect(server, conn)
    m.settle()
    got = [e for e in m.take(server) if isinstance(e, SendConnectResponse)]
    assert len(got) == 1 and got[0].resp.session_id != 0, got
    return got[0].resp.session_id


def create(path: str, data: bytes = b"", mode: CreateMode = CreateMode.PERSISTENT) -> CreateRequest:
    return CreateRequest(path, data, OPEN_ACL, int(mode))


def test_learner_session_and_write_are_forwarded_and_answered_after_commit() -> None:
    m = Mini()
    m.connect(2, 1)
    assert m.take(2) == [], "no ConnectResponse before the createSession txn commits"
    assert len(m.proposals) == 1
    m.settle()
    [resp] = [e for e in m.take(2) if isinstance(e, SendConnectResponse)]
    sid = resp.resp.session_id
    assert sid >> 56 == 2, "a learner numbers its sessions with its own id, as ZooKeeper"
    assert sid in m.leader.sessions, "the leader tracks (and will expire) the learner's session"

    m.request(2, 1, 1, OpCode.create, create("/a", b"v"))
    assert m.take(2) == [], "a forwarded write is answered only after its commit"
    m.commit()
    assert m.take(2) == [] and m.learners[2].tree.get("/a") is None
    m.deliver()
    assert replies(m.take(2)) == [(1, 0, CreateResponse("/a"))]
    for s in (2, 3):
        node = m.learners[s].tree.get("/a")
        assert node is not None and node.data == b"v"
    assert m.leader.tree.get("/a") is not None


def test_reads_wait_behind_the_sessions_forwarded_write() -> None:
    m = Mini()
    open_session(m, 2, 1)
    m.request(2, 1, 1, OpCode.create, create("/a", b"v"))
    m.request(2, 1, 2, OpCode.getData, GetDataRequest("/a", False))
    assert m.take(2) == [], "the read waits for the session's earlier write (FIFO)"
    m.settle()
    got = replies(m.take(2))
    assert [(x, e) for x, e, _ in got] == [(1, 0), (2, 0)]
    body = got[1][2]
    assert isinstance(body, GetDataResponse) and body.data == b"v"


def test_watch_set_on_one_learner_fires_on_a_write_through_another() -> None:
    m = Mini()
    open_session(m, 2, 1)
    open_session(m, 3, 1)
    m.request(3, 1, 1, OpCode.create, create("/w", b"0"))
    m.settle()
    m.take(3)
    m.request(3, 1, 2, OpCode.getData, GetDataRequest("/w", True))
    m.take(3)
    m.request(2, 1, 1, OpCode.setData, SetDataRequest("/w", b"1", -1))
    m.settle()
    events = [e for e in m.take(3) if isinstance(e, Notify)]
    assert [(e.event.type, e.event.path) for e in events] == [
        (int(EventType.NodeDataChanged), "/w")
    ]


def test_plain_sync_waits_for_what_the_leader_proposed_before_it() -> None:
    m = Mini()
    open_session(m, 2, 1)
    open_session(m, 3, 1)
    m.request(2, 1, 1, OpCode.create, create("/x", b"new"))  # proposed, not committed
    m.request(3, 1, 1, OpCode.sync, SyncRequest("/x"))
    m.request(3, 1, 2, OpCode.getData, GetDataRequest("/x", False))
    m.deliver(3)
    assert m.take(3) == [], "no SYNC before the earlier proposal commits"
    m.commit()
    m.deliver(3)
    got = replies(m.take(3))
    assert got[0] == (1, 0, SyncResponse("/x"))
    assert got[1][1] == 0 and isinstance(got[1][2], GetDataResponse)
    assert got[1][2].data == b"new", "a read after sync sees what was proposed before the sync"
    assert not m.proposals, "a plain sync is not a txn"


def test_linearizable_sync_is_a_quorum_round() -> None:
    m = Mini(linearizable=True)
    open_session(m, 3, 1)
    zxid_before = m.leader.tree.last_processed_zxid
    m.request(3, 1, 1, OpCode.sync, SyncRequest("/"))
    assert len(m.proposals) == 1, "linearizableSync: the sync goes through Zab"
    hdr, txn = m.proposals[0]
    assert hdr.type == int(OpCode.error) and txn == ErrorTxn(0)
    m.deliver(3)
    assert m.take(3) == []
    m.settle()
    assert replies(m.take(3)) == [(1, 0, SyncResponse("/"))]
    assert m.learners[3].tree.last_processed_zxid == zxid_before + 1
    # the leader's own clients too
    open_session(m, 1, 7)
    m.request(1, 7, 1, OpCode.sync, SyncRequest("/"))
    assert m.take(1) == [] and len(m.proposals) == 1
    m.settle()
    assert replies(m.take(1)) == [(1, 0, SyncResponse("/"))]


def test_session_moved_to_another_learner_rejects_writes_on_the_old_connection() -> None:
    m = Mini()
    sid = open_session(m, 2, 1)
    m.connect(3, 5, session=sid)
    m.deliver(3)
    [resp] = [e for e in m.take(3) if isinstance(e, SendConnectResponse)]
    assert resp.resp.session_id == sid and resp.resp.time_out > 0
    m.request(2, 1, 9, OpCode.create, create("/moved"))
    m.settle()
    assert replies(m.take(2)) == [(9, int(Err.SESSIONMOVED), None)]
    assert m.leader.tree.get("/moved") is None and m.learners[2].tree.get("/moved") is None
    # the new home works
    m.request(3, 5, 10, OpCode.create, create("/here"))
    m.settle()
    assert replies(m.take(3)) == [(10, 0, CreateResponse("/here"))]


def test_revalidation_of_an_unknown_session_fails() -> None:
    m = Mini()
    m.connect(3, 5, session=(3 << 56) | 12345)
    m.deliver(3)
    got = m.take(3)
    [resp] = [e for e in got if isinstance(e, SendConnectResponse)]
    assert resp.resp.session_id == 0 and resp.resp.time_out == 0
    assert any(isinstance(e, Close) for e in got)


def test_leader_expires_learner_sessions_unless_touched() -> None:
    m = Mini()
    kept = open_session(m, 2, 1)
    gone = open_session(m, 3, 1)
    m.request(3, 1, 1, OpCode.create, create("/eph", mode=CreateMode.EPHEMERAL))
    m.settle()
    m.take(3)
    for t in range(1000, 40_001, 1000):
        m.now = t
        m.request(2, 1, -2, OpCode.ping, None)  # the client pings its learner
        m.leader.touch_sessions(m.learners[2].take_touches(), t)  # the learner pings the leader
        assert m.learners[3].take_touches() == {} or t == 1000
        m.run(1, m.leader.tick(t))
        m.settle()
    assert kept in m.leader.sessions
    assert gone not in m.leader.sessions
    for s in (2, 3):
        assert m.learners[s].tree.get("/eph") is None, "ephemerals go on every server"
    assert any(isinstance(e, Close) for e in m.take(3)), "the expired session's client is closed"


def test_leaders_own_write_on_a_session_that_moved_away_is_rejected() -> None:
    m = Mini()
    sid = open_session(m, 1, 4)
    m.connect(2, 8, session=sid)
    m.deliver(2)
    m.take(2)
    m.request(1, 4, 3, OpCode.create, create("/old"))
    m.settle()
    assert replies(m.take(1)) == [(3, int(Err.SESSIONMOVED), None)]
    assert m.leader.tree.get("/old") is None


def test_read_only_core() -> None:
    ro = ReadOnlyCore(cfg(2), tree=DataTree())
    out = ro.connection_opened(1, "127.0.0.1")
    out = ro.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16), False), 0)
    assert [type(e) for e in out] == [Close], "a client that does not allow read-only is refused"
    ro.connection_opened(2, "127.0.0.1")
    out = ro.receive_connect(2, ConnectRequest(0, 0, 10_000, 0, bytes(16), True), 0)
    [resp] = out
    assert isinstance(resp, SendConnectResponse) and resp.resp.read_only and resp.resp.session_id
    out = ro.receive_request(2, RequestHeader(1, int(OpCode.create)), create("/a"), 0)
    assert replies(out) == [(1, int(Err.NOTREADONLY), None)]
    out = ro.receive_request(2, RequestHeader(2, int(OpCode.sync)), SyncRequest("/"), 0)
    assert replies(out) == [(2, int(Err.NOTREADONLY), None)]
    out = ro.receive_request(
        2, RequestHeader(3, int(OpCode.getData)), GetDataRequest("/", False), 0
    )
    assert replies(out)[0][1] == 0
    assert ro.tree.node_count == DataTree().node_count, "nothing was written"


def _moved_session_reusing_cxids(by_zxid: bool) -> list[tuple[int, int, object]]:
    """Session S lives on learner 2 (old connection), re-attaches on learner 3 (new connection);
    both connections send cxid 1. The old one's SESSIONMOVED ErrorTxn (S, cxid 1) commits and
    reaches learner 3 before the leader has prepared the new one's request: what learner 3
    answers for its cxid 1."""
    m = Mini(by_zxid=by_zxid)
    sid = open_session(m, 2, 1)
    m.connect(3, 5, session=sid)
    m.deliver(3)
    m.take(3)
    m.hold_forwards = True
    m.request(2, 1, 1, OpCode.create, create("/old"))
    m.request(3, 5, 1, OpCode.create, create("/new"))
    m.release_forward()  # the old connection's create -> ErrorTxn SESSIONMOVED
    m.settle()
    m.release_forward()  # the new connection's create
    m.settle()
    assert replies(m.take(2)) == [(1, int(Err.SESSIONMOVED), None)]
    assert m.learners[3].tree.get("/new") is not None
    return replies(m.take(3))


def test_commits_are_matched_to_forwarded_requests_by_zxid() -> None:
    assert _moved_session_reusing_cxids(by_zxid=True) == [(1, 0, CreateResponse("/new"))]
    # ZooKeeper's CommitProcessor rule, (session id, cxid) only, answers the new connection's
    # create with the old one's SESSIONMOVED (the create itself is applied): why peer_host
    # runs learners with match_by_zxid (a test that the check above can fail)
    assert _moved_session_reusing_cxids(by_zxid=False) == [(1, int(Err.SESSIONMOVED), None)]
