"""The bytes of the election and quorum links: every packet the cores use round-trips, and the
fixed parts are ZooKeeper's layout."""

from __future__ import annotations

import struct

import pytest

from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.election.fle import Notification, ServerState
from zkref.core.election.fle import Sid as FleSid
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
from zkref.core.zab.zxid import make_zxid
from zkref.server.quorum_codec import (
    QuorumDecodeError,
    decode_hello,
    decode_notification,
    decode_packet,
    encode_hello,
    encode_notification,
    encode_packet,
)
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn, SetDataTxn, TxnHeader


def _txn(epoch: int, counter: int, path: str = "/a") -> Txn:
    z = make_zxid(epoch, counter)
    return Txn(
        z,
        TxnHeader(0x1234, counter, z, 1_700_000_000_000, int(OpCode.create)),
        CreateTxn(path, b"data", OPEN_ACL_UNSAFE, False, 1),
    )


T1, T2 = _txn(1, 1), _txn(1, 2, "/b")
T3 = Txn(
    make_zxid(2, 1),
    TxnHeader(7, 3, make_zxid(2, 1), 5, int(OpCode.setData)),
    SetDataTxn("/a", b"x", 2),
)

PACKETS: list[QuorumPacket] = [
    FollowerInfo(Sid(3), 7),
    LeaderInfo(8),
    AckEpoch(7, make_zxid(7, 12), True),
    AckEpoch(7, make_zxid(7, 12), False),
    Diff(make_zxid(1, 0), ()),
    Diff(make_zxid(1, 0), (T1, T2, T3)),
    Trunc(make_zxid(1, 1), (T3,)),
    Snap(make_zxid(2, 1), (T1, T2, T3)),
    NewLeader(8),
    Ack(make_zxid(8, 0)),
    Ack(make_zxid(8, 3)),
    UpToDate(make_zxid(8, 0)),
    Proposal(T3),
    Commit(make_zxid(2, 1)),
]


@pytest.mark.parametrize("m", PACKETS, ids=lambda m: type(m).__name__)
def test_quorum_packets_round_trip(m: QuorumPacket) -> None:
    assert decode_packet(encode_packet(m)) == m


def test_quorum_packet_is_jute_quorumpacket() -> None:
    b = encode_packet(Commit(make_zxid(2, 5)))
    # int type, long zxid, buffer data (-1: null), vector<Id> authinfo (0 entries)
    assert b == struct.pack(">iqii", PacketType.COMMIT, make_zxid(2, 5), -1, 0)
    p = encode_packet(Proposal(T1))
    t, z, n = struct.unpack_from(">iqi", p)
    assert (t, z) == (PacketType.PROPOSAL, T1.zxid) and len(p) == 16 + n + 4


def test_bad_packets_are_refused() -> None:
    with pytest.raises(QuorumDecodeError):
        decode_packet(struct.pack(">iqii", 99, 0, -1, 0))
    with pytest.raises(QuorumDecodeError):
        decode_packet(b"\x00\x00")


def test_notification_round_trips_with_the_links_sid() -> None:
    n = Notification(FleSid(3), make_zxid(2, 9), 4, ServerState.FOLLOWING, FleSid(1), 2)
    b = encode_notification(n)
    assert decode_notification(b, 1) == n
    assert struct.unpack_from(">i", b)[0] == 1  # FOLLOWING, as ZooKeeper's ordinal


def test_hello_names_the_sid() -> None:
    assert decode_hello(encode_hello(5)) == 5
    with pytest.raises(QuorumDecodeError):
        decode_hello(struct.pack(">qqi", 1, 5, 0))


def test_learner_packets_round_trip() -> None:
    from zkref.core.effects import Forward
    from zkref.core.member_packets import (
        Assigned,
        LearnerPacket,
        LearnerRequest,
        RevalidateAnswer,
        RevalidateAsk,
        SyncDone,
    )
    from zkref.server.quorum_codec import (
        decode_learner_packet,
        decode_ping,
        encode_learner_packet,
        encode_ping,
        is_learner_packet,
        is_ping,
    )
    from zkref.wire.constants import OpCode
    from zkref.wire.records import ACL, CreateRequest, Id, SetDataRequest, SyncRequest

    auth = (Id("ip", "127.0.0.1"), Id("digest", "u:h"))
    acl = (ACL(31, Id("world", "anyone")),)
    packets: list[LearnerPacket] = [
        LearnerRequest(Forward(7, 3, int(OpCode.create), CreateRequest("/a", b"d", acl, 1), auth)),
        LearnerRequest(Forward(7, 4, int(OpCode.setData), SetDataRequest("/a", None, 2), ())),
        LearnerRequest(Forward(7, 0, int(OpCode.createSession), 4000, ())),
        LearnerRequest(Forward(7, 5, int(OpCode.sync), SyncRequest("/"), auth)),
        LearnerRequest(Forward(7, 6, int(OpCode.multi), None, auth, -5)),
        RevalidateAsk(-(1 << 62), 30_000),
        RevalidateAnswer(1 << 60, True),
        RevalidateAnswer(9, False),
        SyncDone(9, 12),
        Assigned(9, 12, (3 << 32) | 17),
    ]
    for p in packets:
        b = encode_learner_packet(p)
        assert is_learner_packet(b) and not is_ping(b)
        assert decode_learner_packet(b) == p
    touches = {1: 4000, -(1 << 63): 30_000}
    b = encode_ping(touches)
    assert is_ping(b) and decode_ping(b) == touches
