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

from zkref.wire.records import ConnectResponse, TxnBody, TxnHeader, WatcherEvent


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


Effect = Persist | SendConnectResponse | Reply | Notify | Close
