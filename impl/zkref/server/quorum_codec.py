"""Bytes of the election and quorum links: frames, FLE notifications, Zab quorum packets.

Rules:
- every frame is a 4-byte big-endian length then the body (ZooKeeper frames election messages
  this way; its quorum port writes bare records, we frame them too so a reader never parses a
  partial packet);
- a quorum packet is jute `QuorumPacket{int type, long zxid, buffer data, vector<Id> authinfo}`
  with ZooKeeper's type numbers; `data` of PROPOSAL is ZooKeeper's (TxnHeader + txn record);
  DIFF/TRUNC/SNAP carry their txns inside `data` (ZooKeeper sends them as PROPOSAL/COMMIT
  pairs after the DIFF; the core's records hold them inline);
- a notification is ZooKeeper 3.8's layout (`int state, long leader, long zxid, long
  electionEpoch, long peerEpoch, int version, int configLength`); the sender's sid is the link's;
- a link opens with ZooKeeper's initial message: `long protocolVersion (-65536), long sid,
  int addressLength, address`;
- only when the members record traces (`zkref.server.tracing`) a packet or notification is
  followed by a 12-byte trailer, `b"zkLC"` and the sender's Lamport clock (long), after the
  record's last field; readers find it by the record's own length and otherwise ignore it, and
  untraced bytes are exactly the layouts above.
This module decides nothing: it only turns records into bytes and back.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final, cast

from zkref.core.effects import Forward
from zkref.core.election.fle import Notification
from zkref.core.election.fle import ServerState as FleState
from zkref.core.election.fle import Sid as FleSid
from zkref.core.member_packets import (
    Assigned,
    LearnerPacket,
    LearnerRequest,
    RevalidateAnswer,
    RevalidateAsk,
    SyncDone,
)
from zkref.core.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    LeaderInfo,
    NewLeader,
    PacketType,
    Proposal,
    QuorumPacket,
    Sid,
    Snap,
    Trunc,
    Txn,
    UpToDate,
)
from zkref.core.zab.zxid import make_zxid, zxid_epoch
from zkref.wire.codec import (
    DecodeError,
    Request,
    decode_request,
    decode_txn,
    encode_request,
    encode_txn,
)
from zkref.wire.constants import OpCode
from zkref.wire.records import Id

LEN: Final = struct.Struct(">i")
_HEAD: Final = struct.Struct(">iq")  # type, zxid
_INT: Final = struct.Struct(">i")
_II: Final = struct.Struct(">ii")
_LONG: Final = struct.Struct(">q")
_NOTIF: Final = struct.Struct(">iqqqqii")
_HELLO: Final = struct.Struct(">qqi")
_LEARNER_INFO: Final = struct.Struct(
    ">qiq"
)  # LearnerInfo{serverid, protocolVersion, configVersion}

PROTOCOL_VERSION: Final = -65536  # QuorumCnxManager.PROTOCOL_VERSION_V1
LEARNER_PROTOCOL: Final = 0x10000
NOTIFICATION_VERSION: Final = 2
MAX_FRAME: Final = 64 << 20

_STATE_CODE: Final = {
    FleState.LOOKING: 0,
    FleState.FOLLOWING: 1,
    FleState.LEADING: 2,
    FleState.OBSERVING: 3,
}
_CODE_STATE: Final = {v: k for k, v in _STATE_CODE.items()}


class QuorumDecodeError(ValueError):
    """A peer sent bytes that are not a packet we know."""


def frame(body: bytes) -> bytes:
    return LEN.pack(len(body)) + body


# ---------------------------------------------------------------------- link opening


def encode_hello(sid: int) -> bytes:
    return _HELLO.pack(PROTOCOL_VERSION, sid, 0)


HELLO_SIZE: Final = _HELLO.size


def decode_hello(b: bytes) -> int:
    version, sid, addr_len = _HELLO.unpack(b)
    if version != PROTOCOL_VERSION or addr_len != 0:
        raise QuorumDecodeError(f"unexpected link greeting version={version} addr={addr_len}")
    return int(sid)


# ---------------------------------------------------------------------- notifications


def encode_notification(n: Notification) -> bytes:
    return _NOTIF.pack(
        _STATE_CODE[n.state],
        n.leader,
        n.zxid,
        n.election_epoch,
        n.peer_epoch,
        NOTIFICATION_VERSION,
        0,
    )


def decode_notification(b: bytes, sid: int) -> Notification:
    if len(b) < _NOTIF.size:
        raise QuorumDecodeError(f"notification of {len(b)} bytes")
    state, leader, zxid, round_, peer_epoch, _version, _cfg = _NOTIF.unpack_from(b)
    if state not in _CODE_STATE:
        raise QuorumDecodeError(f"notification state {state}")
    return Notification(
        leader=FleSid(leader),
        zxid=zxid,
        election_epoch=round_,
        state=_CODE_STATE[state],
        sid=FleSid(sid),
        peer_epoch=peer_epoch,
    )


# ---------------------------------------------------------------------- Lamport trailer

LAMPORT_TAG: Final = b"zkLC"
_TRAILER: Final = struct.Struct(">4sq")


def with_lamport(body: bytes, clock: int) -> bytes:
    """`body` (a whole packet or notification) followed by the Lamport trailer."""
    return body + _TRAILER.pack(LAMPORT_TAG, clock)


def _trailer(b: bytes, end: int) -> int | None:
    if len(b) - end != _TRAILER.size:
        return None
    tag, clock = _TRAILER.unpack_from(b, end)
    return int(clock) if tag == LAMPORT_TAG else None


def packet_lamport(b: bytes) -> int | None:
    """The Lamport clock after a quorum packet's jute record, None when there is none."""
    try:
        (size,) = _INT.unpack_from(b, _HEAD.size)
        return _trailer(b, _HEAD.size + 4 + max(size, 0) + 4)
    except struct.error:
        return None


def notification_lamport(b: bytes) -> int | None:
    """The Lamport clock after a notification (and its config bytes), None when none."""
    try:
        cfg_len = _NOTIF.unpack_from(b)[-1]
        return _trailer(b, _NOTIF.size + max(cfg_len, 0))
    except struct.error:
        return None


# ---------------------------------------------------------------------- quorum packets


def _buffer(b: bytes | None) -> bytes:
    return _INT.pack(-1) if b is None else _INT.pack(len(b)) + b


def _txns(txns: tuple[Txn, ...]) -> bytes:
    parts = [_INT.pack(len(txns))]
    for t in txns:
        parts.append(_buffer(encode_txn(t.hdr, t.body)))
    return b"".join(parts)


def _read_txn(b: bytes) -> Txn:
    hdr, body = decode_txn(b)
    return Txn(hdr.zxid, hdr, body)


def _read_txns(b: bytes) -> tuple[Txn, ...]:
    (n,) = _INT.unpack_from(b, 0)
    at = 4
    out: list[Txn] = []
    for _ in range(n):
        (size,) = _INT.unpack_from(b, at)
        at += 4
        out.append(_read_txn(b[at : at + size]))
        at += size
    if at != len(b):
        raise QuorumDecodeError(f"{len(b) - at} bytes after the txns")
    return tuple(out)


def encode_packet(m: QuorumPacket) -> bytes:
    data: bytes | None = None
    match m:
        case FollowerInfo():
            zxid = make_zxid(m.accepted_epoch, 0)
            data = _LEARNER_INFO.pack(m.sid, LEARNER_PROTOCOL, 0)
        case LeaderInfo():
            zxid = make_zxid(m.epoch, 0)
            data = _INT.pack(LEARNER_PROTOCOL)
        case AckEpoch():
            # ZooKeeper writes -1 for a stale epoch and loses the number; we keep both
            zxid = m.last_zxid
            data = _INT.pack(m.current_epoch) + (b"\x01" if m.fresh else b"\x00")
        case Diff() | Trunc():
            zxid = m.zxid
            data = _txns(m.txns)
        case Snap():
            zxid = m.zxid
            data = _txns(m.snapshot)
        case NewLeader():
            zxid = make_zxid(m.epoch, 0)
        case Ack() | UpToDate() | Commit():
            zxid = m.zxid
        case Proposal():
            zxid = m.txn.zxid
            data = encode_txn(m.txn.hdr, m.txn.body)
    return _HEAD.pack(int(m.type), zxid) + _buffer(data) + _INT.pack(0)


# PING keeps a quorum link alive (both directions, every half tick); it is the link's business
# only: the cores never see it (they have no notion of a silent link)
PING_PACKET: Final = _HEAD.pack(int(PacketType.PING), 0) + _INT.pack(-1) + _INT.pack(0)


def is_ping(b: bytes) -> bool:
    return len(b) >= 4 and _INT.unpack_from(b)[0] == PacketType.PING


def decode_packet(b: bytes) -> QuorumPacket:
    try:
        return _decode_packet(b)
    except (struct.error, ValueError, IndexError) as e:
        if isinstance(e, QuorumDecodeError):
            raise
        raise QuorumDecodeError(f"bad quorum packet: {e}") from e


def _decode_packet(b: bytes) -> QuorumPacket:
    t, zxid = _HEAD.unpack_from(b, 0)
    at = _HEAD.size
    (size,) = _INT.unpack_from(b, at)
    at += 4
    data = b""
    if size >= 0:
        data = b[at : at + size]
        at += size
    (n_auth,) = _INT.unpack_from(b, at)
    if n_auth != 0:
        raise QuorumDecodeError("authinfo is not supported")
    try:
        ptype = PacketType(t)
    except ValueError as e:
        raise QuorumDecodeError(f"unknown packet type {t}") from e
    match ptype:
        case PacketType.FOLLOWERINFO:
            sid, _proto, _cfg = _LEARNER_INFO.unpack_from(data)
            return FollowerInfo(Sid(sid), zxid_epoch(zxid))
        case PacketType.LEADERINFO:
            return LeaderInfo(zxid_epoch(zxid))
        case PacketType.ACKEPOCH:
            (epoch,) = _INT.unpack_from(data)
            return AckEpoch(epoch, zxid, data[4:5] == b"\x01")
        case PacketType.DIFF:
            return Diff(zxid, _read_txns(data))
        case PacketType.TRUNC:
            return Trunc(zxid, _read_txns(data))
        case PacketType.SNAP:
            return Snap(zxid, _read_txns(data))
        case PacketType.NEWLEADER:
            return NewLeader(zxid_epoch(zxid))
        case PacketType.ACK:
            return Ack(zxid)
        case PacketType.UPTODATE:
            return UpToDate(zxid)
        case PacketType.COMMIT:
            return Commit(zxid)
        case PacketType.PROPOSAL:
            return Proposal(_read_txn(data))
        case _:
            raise QuorumDecodeError(f"packet {ptype.name} is not used by zkref")


# ---------------------------------------------------------------------- learner client traffic
# Not Zab: what a follower's client port exchanges with the leader's (ZooKeeper's REQUEST,
# REVALIDATE, SYNC and the session list in a learner's PING). The host handles these itself;
# the Zab cores never see them.


ASSIGNED_TYPE: Final = 100
_LEARNER_TYPES: Final = frozenset(
    {int(PacketType.REQUEST), int(PacketType.REVALIDATE), int(PacketType.SYNC), ASSIGNED_TYPE}
)
_QII: Final = struct.Struct(">qii")
_QIII: Final = struct.Struct(">qiii")
_QI: Final = struct.Struct(">qi")
_QB: Final = struct.Struct(">q?")
_CREATE_SESSION: Final = int(OpCode.createSession)


def _w_ustr(s: str) -> bytes:
    b = s.encode("utf-8")
    return _INT.pack(len(b)) + b


def _r_ustr(b: bytes, at: int) -> tuple[str, int]:
    (n,) = _INT.unpack_from(b, at)
    at += 4
    if n < 0 or at + n > len(b):
        raise QuorumDecodeError(f"bad string length {n}")
    return b[at : at + n].decode("utf-8"), at + n


def encode_learner_packet(m: LearnerPacket) -> bytes:
    auth = b""
    n_auth = 0
    match m:
        case LearnerRequest(fwd=f):
            ptype = PacketType.REQUEST
            if f.op == _CREATE_SESSION:
                body = _INT.pack(f.body if isinstance(f.body, int) else 0)
            elif f.body is None:
                body = b""
            else:
                # the request record's bytes: encode_request's frame less length, xid and type
                body = encode_request(f.xid, f.op, cast(Request, f.body))[12:]
            data = _QIII.pack(f.session_id, f.xid, f.op, f.err) + body
            n_auth = len(f.auth)
            auth = b"".join(_w_ustr(i.scheme) + _w_ustr(i.id) for i in f.auth)
        case RevalidateAsk():
            ptype = PacketType.REVALIDATE
            data = _QI.pack(m.session_id, m.timeout_ms)
        case RevalidateAnswer():
            ptype = PacketType.REVALIDATE
            data = _QB.pack(m.session_id, m.valid)
        case SyncDone():
            ptype = PacketType.SYNC
            data = _QI.pack(m.session_id, m.xid)
        case Assigned():
            return (
                _HEAD.pack(ASSIGNED_TYPE, m.zxid)
                + _buffer(_QI.pack(m.session_id, m.xid))
                + (_INT.pack(0))
            )
    return _HEAD.pack(int(ptype), 0) + _buffer(data) + _INT.pack(n_auth) + auth


def is_learner_packet(b: bytes) -> bool:
    return len(b) >= 4 and _INT.unpack_from(b)[0] in _LEARNER_TYPES


def decode_learner_packet(b: bytes) -> LearnerPacket:
    try:
        return _decode_learner_packet(b)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
        if isinstance(e, QuorumDecodeError):
            raise
        raise QuorumDecodeError(f"bad learner packet: {e}") from e


def _decode_learner_packet(b: bytes) -> LearnerPacket:
    t, zxid = _HEAD.unpack_from(b, 0)
    at = _HEAD.size
    (size,) = _INT.unpack_from(b, at)
    at += 4
    if size < 0 or at + size > len(b):
        raise QuorumDecodeError(f"bad data length {size}")
    if t == ASSIGNED_TYPE:
        sid_, xid_ = _QI.unpack(b[at : at + size])
        return Assigned(sid_, xid_, zxid)
    data = b[at : at + size]
    at += size
    (n_auth,) = _INT.unpack_from(b, at)
    at += 4
    ids: list[Id] = []
    for _ in range(n_auth):
        scheme, at = _r_ustr(b, at)
        ident, at = _r_ustr(b, at)
        ids.append(Id(scheme, ident))
    if t == PacketType.REQUEST:
        sid, xid, op, err = _QIII.unpack_from(data)
        rest = data[_QIII.size :]
        body: object | None
        if op == _CREATE_SESSION:
            (body,) = _INT.unpack_from(rest)
        elif not rest and err != 0:
            body = None
        else:
            try:
                _hdr, body = decode_request(_II.pack(xid, op) + rest)
            except DecodeError as e:
                raise QuorumDecodeError(f"forwarded request: {e}") from e
        return LearnerRequest(Forward(sid, xid, op, body, tuple(ids), err))
    if t == PacketType.REVALIDATE:
        if len(data) == _QI.size:
            return RevalidateAsk(*_QI.unpack(data))
        sid, valid = _QB.unpack(data)
        return RevalidateAnswer(sid, valid)
    if t == PacketType.SYNC:
        return SyncDone(*_QI.unpack(data))
    raise QuorumDecodeError(f"packet type {t} is not a learner packet")


def encode_ping(touches: Mapping[int, int]) -> bytes:
    """A learner's PING: the sessions its clients touched since the last one, with timeouts."""
    data = b"".join(_QI.pack(sid, timeout) for sid, timeout in touches.items())
    return _HEAD.pack(int(PacketType.PING), 0) + _buffer(data) + _INT.pack(0)


def decode_ping(b: bytes) -> dict[int, int]:
    at = _HEAD.size
    (size,) = _INT.unpack_from(b, at)
    if size <= 0:
        return {}
    data = b[at + 4 : at + 4 + size]
    if len(data) != size or size % _QI.size:
        raise QuorumDecodeError(f"ping data of {size} bytes")
    return {sid: timeout for sid, timeout in _QI.iter_unpack(data)}
