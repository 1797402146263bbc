"""Quorum packets of Zab, named as ZooKeeper names them, and the logged txn.

Rules:
- a packet is immutable data; its `PacketType` is ZooKeeper's wire number;
- a zxid is an `int` (`zkref.core.zab.zxid`); the ACK of NEWLEADER carries the NEWLEADER zxid
  (counter 0), which is how a leader tells it from the ACK of a proposal (counter >= 1);
- a `Txn` is the standalone server's txn (header + body), so `DataTree.apply` is the one
  replicated state machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import NewType

from zkref.core.zab.zxid import zxid_counter, zxid_epoch
from zkref.wire.records import TxnBody, TxnHeader

Sid = NewType("Sid", int)


class PacketType(IntEnum):
    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    REVALIDATE = 6
    SYNC = 7
    INFORM = 8
    COMMITANDACTIVATE = 9
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18
    INFORMANDACTIVATE = 19


class ServerState(StrEnum):
    """The spec's `state` (model values)."""

    LOOKING = "LOOKING"
    FOLLOWING = "FOLLOWING"
    LEADING = "LEADING"


class ZabState(StrEnum):
    """The spec's `zabState`."""

    ELECTION = "ELECTION"
    DISCOVERY = "DISCOVERY"
    SYNCHRONIZATION = "SYNCHRONIZATION"
    BROADCAST = "BROADCAST"


class NlPhase(StrEnum):
    """The spec's `nlPhase`: the follower's NEWLEADER sub-steps."""

    NONE = "none"
    RECEIVED = "received"
    EPOCH_WRITTEN = "epochWritten"
    ACKED = "acked"


@dataclass(frozen=True, slots=True)
class Txn:
    zxid: int
    hdr: TxnHeader
    body: TxnBody

    def __post_init__(self) -> None:
        assert self.hdr.zxid == self.zxid, (self.hdr.zxid, self.zxid)

    def __hash__(self) -> int:
        # cheap: the body takes part in equality only
        return hash((self.zxid, self.hdr.client_id, self.hdr.cxid))

    @property
    def epoch(self) -> int:
        return zxid_epoch(self.zxid)

    @property
    def counter(self) -> int:
        return zxid_counter(self.zxid)


@dataclass(frozen=True, slots=True)
class FollowerInfo:
    sid: Sid
    accepted_epoch: int
    type = PacketType.FOLLOWERINFO


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    epoch: int
    type = PacketType.LEADERINFO


@dataclass(frozen=True, slots=True)
class AckEpoch:
    """`fresh` is False when the follower had accepted this epoch before (ZooKeeper sends -1)."""

    current_epoch: int
    last_zxid: int
    fresh: bool
    type = PacketType.ACKEPOCH


@dataclass(frozen=True, slots=True)
class Diff:
    zxid: int
    txns: tuple[Txn, ...]
    type = PacketType.DIFF


@dataclass(frozen=True, slots=True)
class Trunc:
    """Truncate the log to `zxid`, then append `txns` (TRUNC followed by proposals)."""

    zxid: int
    txns: tuple[Txn, ...]
    type = PacketType.TRUNC


@dataclass(frozen=True, slots=True)
class Snap:
    """The leader's state as the txns it summarises (a snapshot replayed from the start)."""

    zxid: int
    snapshot: tuple[Txn, ...]
    type = PacketType.SNAP


@dataclass(frozen=True, slots=True)
class NewLeader:
    epoch: int
    type = PacketType.NEWLEADER


@dataclass(frozen=True, slots=True)
class Ack:
    zxid: int
    type = PacketType.ACK


@dataclass(frozen=True, slots=True)
class UpToDate:
    zxid: int
    type = PacketType.UPTODATE


@dataclass(frozen=True, slots=True)
class Proposal:
    txn: Txn
    type = PacketType.PROPOSAL


@dataclass(frozen=True, slots=True)
class Commit:
    zxid: int
    type = PacketType.COMMIT


SyncMessage = Diff | Trunc | Snap
LeaderMessage = LeaderInfo | Diff | Trunc | Snap | NewLeader | UpToDate | Proposal | Commit
LearnerMessage = FollowerInfo | AckEpoch | Ack
QuorumPacket = LeaderMessage | LearnerMessage
