"""Effects returned by `zkref.core.server.ServerCore`: what the shell must do, in order.

Rules:
- effects are data; the shell executes them in list order and decides nothing itself;
- a `Persist` must reach the disk before the core is told `persisted(zxid)`; every reply or
  notification that depends on a txn is only emitted by that later call, so "persist before send"
  holds by construction;
- effects naming a connection the shell has already closed are dropped by the shell.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkref.wire.records import ConnectResponse, Id, TxnBody, TxnHeader, WatcherEvent


@dataclass(frozen=True, slots=True)
class Persist:
    """Append this txn to the txn log (fsync may be batched; then call `persisted`)."""

    hdr: TxnHeader
    txn: TxnBody


@dataclass(frozen=True, slots=True)
class SendConnectResponse:
    """Send the handshake answer (the shell writes the trailing readOnly byte unless the
    client's ConnectRequest omitted it, as ZooKeeper does for old clients)."""

    conn: int
    resp: ConnectResponse


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply frame: ReplyHeader(xid, zxid, err) then `body` (no body when err != 0)."""

    conn: int
    xid: int
    zxid: int
    err: int
    body: object | None


@dataclass(frozen=True, slots=True)
class Notify:
    """A watch notification: ReplyHeader(-1, zxid, 0) then the WatcherEvent."""

    conn: int
    event: WatcherEvent
    zxid: int


@dataclass(frozen=True, slots=True)
class Close:
    """Flush what was already queued for this connection, then close it."""

    conn: int
    reason: str


# --------------------------------------------------------------------- ensemble members only
# (zkref.core.member: a learner hands its writes to the leader, which answers syncs; a standalone
# server never emits these)


@dataclass(frozen=True, slots=True)
class Forward:
    """A learner's request for the leader (ZooKeeper's REQUEST packet): the leader prepares the
    txn; this server answers the client when the txn commits here (or, for a plain `sync`, when
    the leader's `SyncReady` comes back). `err` != 0: the request is to become an ErrorTxn with
    that code (a body that did not decode, an opcode clients may not send). For createSession
    `body` is the negotiated timeout (int)."""

    session_id: int
    xid: int
    op: int
    body: object | None
    auth: tuple[Id, ...]
    err: int = 0


@dataclass(frozen=True, slots=True)
class Revalidate:
    """Ask the leader whether a session that re-attaches here is alive (ZooKeeper's REVALIDATE);
    the answer comes back as `LearnerCore.revalidated`."""

    session_id: int
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class SyncReady:
    """Leader: every txn proposed before learner `learner`'s `sync` is committed; send it the
    SYNC packet (after the COMMITs already queued on that link)."""

    learner: int
    session_id: int
    xid: int


Effect = Persist | SendConnectResponse | Reply | Notify | Close | Forward | Revalidate | SyncReady
