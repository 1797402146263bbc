"""The client side of an ensemble member: `ServerCore` as a leader, a learner, or read-only.

ZooKeeper: LeaderZooKeeperServer, FollowerZooKeeperServer (FollowerRequestProcessor,
CommitProcessor, the learner's REQUEST/REVALIDATE/SYNC packets) and ReadOnlyZooKeeperServer.
All three share the standalone core's connections, reads, watches and per-session FIFO; they
differ only in who prepares a write and when it is answered.

Rules:
- the leader prepares every txn of the ensemble: its own clients' writes (as a standalone
  server, but answered when Zab commits them) and the learners' forwarded requests
  (`receive_forwarded`, answered by the learner); one zxid counter, handed out in order;
- a session has an owner server (ZooKeeper's SessionTrackerImpl owner): set by the server that
  created it or that revalidated it last; a write from any other server becomes an ErrorTxn
  SESSIONMOVED -- it takes a zxid and is answered, but changes nothing;
- the leader's tracker expires every session of the ensemble; learners report the sessions
  their clients touched (on each quorum ping) and ask the leader before letting a session
  re-attach (`Revalidate`);
- a learner never prepares: a write, closeSession, createSession or sync is `Forward`ed and
  holds back its session's later requests (`_Pending`) until its txn commits here
  (`apply_committed`, matched by session id and cxid, as CommitProcessor matches them) or, for a
  plain sync, until the leader's SYNC arrives (`sync_done`) -- which the leader sends only after
  the COMMITs of everything proposed before it, on the same FIFO link;
- `linearizable_sync`: a sync is a no-op txn (an ErrorTxn with code 0) through Zab, so it is
  answered only after a quorum acknowledged the leader that ordered it -- ZOOKEEPER-1675's
  remedy, which upstream never merged; a plain sync only waits for what the leader proposed;
- read-only (a member cut off from the quorum, readonlymode.enabled): clients that allow
  read-only get local sessions that never become txns, reads are served from the last applied
  tree, every write and sync is answered NOTREADONLY; sessions expire locally.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from zkref.core.acl import AuthInfo
from zkref.core.datatree import DataTree
from zkref.core.effects import Effect, Forward, Notify, Persist, Revalidate, SyncReady
from zkref.core.server import (
    _CHECK,
    _CONNECTING,
    _K_REMOTE,
    _K_SYNC,
    _OPEN,
    _REVALIDATING,
    _SYNC,
    NOTIFICATION_ZXID,
    CoreConfig,
    ServerCore,
    _Conn,
    _Inflight,
    _Pending,
)
from zkref.wire.constants import Err, OpCode
from zkref.wire.records import (
    ConnectRequest,
    ConnectResponse,
    ErrorTxn,
    MultiResponse,
    SyncRequest,
    SyncResponse,
    TxnBody,
    TxnHeader,
)

_CREATE_SESSION = int(OpCode.createSession)
_CLOSE_SESSION = int(OpCode.closeSession)
_ERROR = int(OpCode.error)


def _noop_sync_txn(session_id: int, xid: int, zxid: int, now_ms: int) -> tuple[TxnHeader, TxnBody]:
    """linearizableSync's quorum round: a txn that changes nothing but its zxid."""
    return TxnHeader(session_id, xid, zxid, now_ms, _ERROR), ErrorTxn(0)


class LeaderCore(ServerCore):
    """The leader's client port and the ensemble's single preparer of txns."""

    # planted bugs for the checkers (tests/test_sessions_props.py), as spec/Sessions.tla's
    bug_no_owner_check = False  # BUG_NO_OWNER_CHECK: no SESSIONMOVED, any server may write
    bug_revive_expired = False  # BUG_REVIVE_EXPIRED: REVALIDATE revives a closed session

    def __init__(
        self,
        config: CoreConfig,
        *,
        tree: DataTree | None = None,
        sessions: Mapping[int, int] | None = None,
        linearizable_sync: bool = False,
    ) -> None:
        super().__init__(config, tree=tree, sessions=sessions)
        self.linearizable_sync = linearizable_sync
        # session id -> the server that owns it (None: not yet claimed in this epoch)
        self._session_server: dict[int, int] = {}
        # plain syncs waiting for the txns proposed before them: (zxid, learner or None, ...)
        self._sync_waits: deque[tuple[int, int | None, int, int]] = deque()

    @property
    def me(self) -> int:
        return self.config.server_id

    # --- sessions -------------------------------------------------------------------------
    def _new_session(self, c: _Conn, timeout: int, now_ms: int, out: list[Effect]) -> None:
        super()._new_session(c, timeout, now_ms, out)
        self._session_server[c.session_id] = self.me

    def _reattach(self, c: _Conn, sid: int, timeout: int, now_ms: int, out: list[Effect]) -> None:
        if self.sessions.touch(sid, timeout, now_ms):
            self._session_server[sid] = self.me
            self._session_opened(c, sid, out)
        else:
            self._invalid_session(c, sid, out)

    def revalidate(self, learner: int, session_id: int, timeout_ms: int, now_ms: int) -> bool:
        """A learner's REVALIDATE: is the session alive? If so it now belongs to `learner`."""
        if not self.sessions.touch(session_id, timeout_ms, now_ms) and not self.bug_revive_expired:
            return False
        self._session_server[session_id] = learner
        return True

    def touch_sessions(self, touches: Mapping[int, int], now_ms: int) -> None:
        """A learner's ping: the sessions its clients kept alive, with their timeouts."""
        for sid, timeout in touches.items():
            self.sessions.touch(sid, timeout, now_ms)

    def _session_closed(self, sid: int, out: list[Effect]) -> None:
        self._session_server.pop(sid, None)
        super()._session_closed(sid, out)

    def _claim(self, sid: int, server: int) -> bool:
        """PrepRequestProcessor.checkSession's owner part: False when another server owns it."""
        owner = self._session_server.get(sid)
        if owner is None or self.bug_no_owner_check:
            self._session_server[sid] = server
            return True
        return owner == server

    # --- the leader's own clients ---------------------------------------------------------
    def _write(self, c: _Conn, xid: int, op: int, body: object | None, now_ms: int) -> list[Effect]:
        if not self._claim(c.session_id, self.me):
            return self._error_write(c, xid, op, Err.SESSIONMOVED, now_ms)
        return super()._write(c, xid, op, body, now_ms)

    def _sync(self, c: _Conn, xid: int, body: object | None, now_ms: int) -> list[Effect]:
        if not isinstance(body, SyncRequest):
            return self._ordered(c, xid, _SYNC, body, now_ms)  # answered MarshallingError
        sid = c.session_id
        if self.linearizable_sync:
            hdr, txn = _noop_sync_txn(sid, xid, self._last_zxid + 1, now_ms)
            entry = self._hand_out(
                _Inflight(_K_SYNC, hdr, txn, c.conn, xid, _SYNC, sid, now_ms, body)
            )
            self._enqueue(sid, entry)
            return [Persist(hdr, txn)]
        if not self._inflight:
            return self._ordered(c, xid, _SYNC, body, now_ms)
        # Leader.processSync: answered once everything proposed before it is committed
        self._enqueue(sid, _Pending(c.conn, xid, _SYNC, body, sid, now_ms))
        self._sync_waits.append((self._last_zxid, None, sid, xid))
        return []

    # --- the learners' requests -------------------------------------------------------------
    def receive_forwarded(
        self,
        learner: int,
        fwd: Forward,
        now_ms: int,
    ) -> list[Effect]:
        """A learner's REQUEST (ZooKeeper: LearnerHandler -> submitLearnerRequest -> prep)."""
        sid, xid, op = fwd.session_id, fwd.xid, fwd.op
        zxid = self._last_zxid + 1
        if op == _CREATE_SESSION:
            timeout = fwd.body if isinstance(fwd.body, int) else 0
            self.sessions.track(sid, timeout, now_ms)
            self._session_server[sid] = learner
            hdr, txn = self.prep.create_session(sid, timeout, now_ms, zxid)
            return self._remote(learner, hdr, txn, xid, op, now_ms)
        if op == _SYNC and not self.linearizable_sync:
            if not self._inflight:
                return [SyncReady(learner, sid, xid)]
            self._sync_waits.append((self._last_zxid, learner, sid, xid))
            return []
        err = fwd.err
        s = self.sessions.get(sid)
        if err == 0 and (s is None or (s.closing and op != _CLOSE_SESSION)):
            err = int(Err.SESSIONEXPIRED)
        elif err == 0 and not self._claim(sid, learner):
            err = int(Err.SESSIONMOVED)
        if err != 0:
            hdr = TxnHeader(sid, xid, zxid, now_ms, _ERROR)
            return self._remote(learner, hdr, ErrorTxn(err), xid, op, now_ms)
        self.sessions.touch(sid, s.timeout_ms if s is not None else 0, now_ms)
        if op == _SYNC:
            hdr, txn = _noop_sync_txn(sid, xid, zxid, now_ms)
        elif op == _CLOSE_SESSION:
            hdr, txn = self.prep.close_session(sid, xid, now_ms, zxid)
            self.sessions.set_closing(sid)
        else:
            auth = AuthInfo(fwd.auth, any(i.scheme == "super" for i in fwd.auth))
            hdr, txn = self.prep.prep(sid, xid, op, fwd.body, auth, now_ms, zxid)
        return self._remote(learner, hdr, txn, xid, op, now_ms)

    def _remote(
        self, learner: int, hdr: TxnHeader, txn: TxnBody, xid: int, op: int, now_ms: int
    ) -> list[Effect]:
        self._hand_out(
            _Inflight(_K_REMOTE, hdr, txn, None, xid, op, hdr.client_id, now_ms, learner)
        )
        return [Persist(hdr, txn)]

    # --- commits ----------------------------------------------------------------------------
    def persisted(self, upto_zxid: int, now_ms: int) -> list[Effect]:
        out = super().persisted(upto_zxid, now_ms)
        waits = self._sync_waits
        done = self.tree.last_processed_zxid
        while waits and waits[0][0] <= done:
            _, learner, sid, xid = waits.popleft()
            if learner is not None:
                out.append(SyncReady(learner, sid, xid))
            else:
                self._finish_local_sync(sid, xid, now_ms, out)
        return out

    def _finish_local_sync(self, sid: int, xid: int, now_ms: int, out: list[Effect]) -> None:
        q = self._queues.get(sid)
        if not q:
            return
        p = q[0]
        if not isinstance(p, _Pending) or p.xid != xid:
            return
        c = self._conns.get(p.conn)
        if c is not None:
            assert isinstance(p.body, SyncRequest), p.body
            last = self.tree.last_processed_zxid
            out.append(self._reply(c, xid, last, 0, SyncResponse(p.body.path), _SYNC))
            self._latency(c, now_ms - p.received_ms)
        self._release(p, now_ms, out)


class LearnerCore(ServerCore):
    """A follower's client port: reads here, everything else through the leader."""

    def __init__(
        self,
        config: CoreConfig,
        *,
        tree: DataTree | None = None,
        match_by_zxid: bool = False,
    ) -> None:
        super().__init__(config, tree=tree)
        # True: the leader names the zxid of each forwarded request (`assigned`) and only that
        # txn answers it; False: ZooKeeper's CommitProcessor rule, (session id, cxid)
        self.match_by_zxid = match_by_zxid
        self._touched: dict[int, int] = {}
        self._revalidating: dict[int, int] = {}  # session id -> the connection waiting

    # --- sessions -------------------------------------------------------------------------
    def _new_session(self, c: _Conn, timeout: int, now_ms: int, out: list[Effect]) -> None:
        sid = self.sessions.create_session(timeout, now_ms)
        c.session_id = sid
        c.state = _CONNECTING
        self._owner[sid] = c.conn
        self._enqueue(sid, _Pending(c.conn, 0, _CREATE_SESSION, None, sid, now_ms))
        out.append(Forward(sid, 0, _CREATE_SESSION, timeout, ()))

    def _reattach(self, c: _Conn, sid: int, timeout: int, now_ms: int, out: list[Effect]) -> None:
        c.session_id = sid
        c.state = _REVALIDATING
        self._revalidating[sid] = c.conn
        out.append(Revalidate(sid, timeout))

    def revalidated(self, session_id: int, valid: bool, now_ms: int) -> list[Effect]:
        """The leader's answer to `Revalidate`."""
        out: list[Effect] = []
        conn = self._revalidating.pop(session_id, None)
        c = self._conns.get(conn) if conn is not None else None
        if c is None or c.state != _REVALIDATING or c.session_id != session_id:
            return out
        if valid:
            self.sessions.track(session_id, c.timeout_ms, now_ms)
            self._session_opened(c, session_id, out)
        else:
            self._invalid_session(c, session_id, out)
        return out

    def _touch(self, sid: int, timeout_ms: int, now_ms: int) -> bool:
        if not self.sessions.touch(sid, timeout_ms, now_ms):
            return False
        self._touched[sid] = timeout_ms
        return True

    def take_touches(self) -> dict[int, int]:
        """The sessions touched since the last call (for the next ping to the leader)."""
        t, self._touched = self._touched, {}
        return t

    # --- requests: forwarded ---------------------------------------------------------------
    def _forward(
        self, c: _Conn, xid: int, op: int, body: object | None, err: int, now_ms: int
    ) -> list[Effect]:
        sid = c.session_id
        self._enqueue(sid, _Pending(c.conn, xid, op, body, sid, now_ms))
        return [Forward(sid, xid, op, body, c.auth.ids, err)]

    def _write(self, c: _Conn, xid: int, op: int, body: object | None, now_ms: int) -> list[Effect]:
        if op == _CLOSE_SESSION:
            self.sessions.set_closing(c.session_id)
        return self._forward(c, xid, op, body, 0, now_ms)

    def _error_write(
        self,
        c: _Conn,
        xid: int,
        op: int,
        err: Err,
        now_ms: int,
        reply_body: object | None = None,
    ) -> list[Effect]:
        sid = c.session_id
        # the marker keeps the error reply's body (a multi's empty MultiResponse) for `_answer`
        self._enqueue(sid, _Pending(c.conn, xid, op, reply_body, sid, now_ms))
        return [Forward(sid, xid, op, None, c.auth.ids, int(err))]

    def _sync(self, c: _Conn, xid: int, body: object | None, now_ms: int) -> list[Effect]:
        if not isinstance(body, SyncRequest):
            return self._ordered(c, xid, _SYNC, body, now_ms)  # answered MarshallingError
        return self._forward(c, xid, _SYNC, body, 0, now_ms)

    def tick(self, now_ms: int) -> list[Effect]:
        return []  # the leader expires sessions and reaps containers

    # --- what the leader decided --------------------------------------------------------------
    def apply_committed(self, hdr: TxnHeader, txn: TxnBody, now_ms: int) -> list[Effect]:
        """A committed txn (Zab's Apply): apply it, fire its watches, and answer the request it
        came from if that was forwarded from here (CommitProcessor, FinalRequestProcessor)."""
        out: list[Effect] = []
        res = self.tree.apply(hdr, txn)
        conns = self._conns
        if res.triggers:
            nz = NOTIFICATION_ZXID if self._zk38 else res.zxid
            for trig in res.triggers:
                for w, event in self.watches.trigger(trig.path, trig.event):
                    wc = conns.get(w)
                    if wc is not None:
                        wc.sent += 1
                        self.packets_sent += 1
                        out.append(Notify(w, event, nz))
        q = self._queues.get(hdr.client_id)
        if q:
            p = q[0]
            if isinstance(p, _Pending) and (
                p.zxid == hdr.zxid if self.match_by_zxid else p.xid == hdr.cxid
            ):
                self._answer(p, res.zxid, res.err, res.response, now_ms, out)
        if res.session_closed is not None:
            self._session_closed(res.session_closed, out)
        return out

    def assigned(self, session_id: int, xid: int, zxid: int) -> list[Effect]:
        """The leader made txn `zxid` of our forwarded request (session, xid). Matching commits
        by zxid, not only by (session id, cxid) as ZooKeeper's CommitProcessor does, keeps a
        request answered with its own txn when a client re-uses cxids on a new connection and
        the connection the session left still sends (its SESSIONMOVED ErrorTxn carries the
        same session id and cxid)."""
        for p in self._queues.get(session_id, ()):
            if isinstance(p, _Pending) and p.xid == xid and p.zxid is None:
                p.zxid = zxid
                break
        return []

    def sync_done(self, session_id: int, xid: int, now_ms: int) -> list[Effect]:
        """The leader's SYNC: everything it proposed before our sync is applied here."""
        out: list[Effect] = []
        q = self._queues.get(session_id)
        if q:
            p = q[0]
            if isinstance(p, _Pending) and p.op == _SYNC and p.xid == xid:
                last = self.tree.last_processed_zxid
                self._answer(p, last, 0, None, now_ms, out)
        return out

    def _answer(
        self, p: _Pending, zxid: int, err: int, body: object | None, now_ms: int, out: list[Effect]
    ) -> None:
        c = self._conns.get(p.conn)
        if c is not None:
            if p.op == _CREATE_SESSION:
                if c.state == _CONNECTING and err == 0:
                    c.state = _OPEN
                    pw = self.sessions.password(p.session_id)
                    self._send_connect(c, ConnectResponse(0, c.timeout_ms, p.session_id, pw), out)
            elif p.op == _SYNC:
                assert isinstance(p.body, SyncRequest), p.body
                if err == 0:
                    body = SyncResponse(p.body.path)
                zxid = self.tree.last_processed_zxid
                out.append(self._reply(c, p.xid, zxid, err, body if err == 0 else None, p.op))
                self._latency(c, now_ms - p.received_ms)
            elif p.op == _CHECK and err == 0:
                pass  # 3.8 cannot serialize a successful check's reply (see ServerCore.persisted)
            else:
                body = body if err == 0 else p.body if isinstance(p.body, MultiResponse) else None
                out.append(self._reply(c, p.xid, zxid, err, body, p.op))
                self._latency(c, now_ms - p.received_ms)
        self._release(p, now_ms, out)


class ReadOnlyCore(ServerCore):
    """A member cut off from the quorum (ZooKeeper's ReadOnlyZooKeeperServer)."""

    def receive_connect(self, conn: int, req: ConnectRequest, now_ms: int) -> list[Effect]:
        c = self._conns.get(conn)
        if c is not None and not req.read_only:
            out: list[Effect] = []
            c.received += 1
            self._close(c, "not a read-only client: this server is read-only", out)
            return out
        return super().receive_connect(conn, req, now_ms)

    def _new_session(self, c: _Conn, timeout: int, now_ms: int, out: list[Effect]) -> None:
        sid = self.sessions.create_session(timeout, now_ms)
        self._session_opened(c, sid, out)

    def _send_connect(self, c: _Conn, resp: ConnectResponse, out: list[Effect]) -> None:
        if resp.session_id != 0:
            resp = ConnectResponse(
                resp.protocol_version, resp.time_out, resp.session_id, resp.passwd, True
            )
        super()._send_connect(c, resp, out)

    def _write(self, c: _Conn, xid: int, op: int, body: object | None, now_ms: int) -> list[Effect]:
        out: list[Effect] = []
        last = self.tree.last_processed_zxid
        if op == _CLOSE_SESSION:
            # a local session: closed here, nothing to log
            out.append(self._reply(c, xid, last, 0, None, op))
            self.sessions.remove(c.session_id)
            self._close(c, "session closed", out)
            return out
        out.append(self._reply(c, xid, last, int(Err.NOTREADONLY), None, op))
        return out

    def _error_write(
        self,
        c: _Conn,
        xid: int,
        op: int,
        err: Err,
        now_ms: int,
        reply_body: object | None = None,
    ) -> list[Effect]:
        return self._write(c, xid, op, None, now_ms)

    def _sync(self, c: _Conn, xid: int, body: object | None, now_ms: int) -> list[Effect]:
        return self._write(c, xid, _SYNC, body, now_ms)

    def tick(self, now_ms: int) -> list[Effect]:
        out: list[Effect] = []
        for sid in self.sessions.expired(now_ms):
            self.sessions.remove(sid)
            owner = self._owner.pop(sid, None)
            c = self._conns.get(owner) if owner is not None else None
            if c is not None:
                self._close(c, f"session 0x{sid & 0xFFFFFFFFFFFFFFFF:x} expired", out)
        return out


__all__ = ["LeaderCore", "LearnerCore", "ReadOnlyCore"]
