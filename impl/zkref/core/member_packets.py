"""The packets an ensemble member's client port exchanges over its quorum link (not Zab):
ZooKeeper's REQUEST, REVALIDATE and SYNC, and zkref's ASSIGNED. Records only: the bytes are
`zkref.server.quorum_codec`'s; the simulator (`zkref.sim.client_cluster`) carries them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkref.core.effects import Forward


@dataclass(frozen=True, slots=True)
class LearnerRequest:
    """REQUEST: a client request a learner forwards (data: sessionId, cxid, type, err, body)."""

    fwd: Forward


@dataclass(frozen=True, slots=True)
class RevalidateAsk:
    """REVALIDATE, learner -> leader (data: sessionId, timeout)."""

    session_id: int
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class RevalidateAnswer:
    """REVALIDATE, leader -> learner (data: sessionId, valid)."""

    session_id: int
    valid: bool


@dataclass(frozen=True, slots=True)
class SyncDone:
    """SYNC, leader -> learner: the learner's `sync` (sessionId, cxid) may be answered."""

    session_id: int
    xid: int


@dataclass(frozen=True, slots=True)
class Assigned:
    """zkref's own (type 100), leader -> learner, before the PROPOSAL on the same link: the
    learner's forwarded request (sessionId, cxid) became txn zxid (`LearnerCore.assigned`)."""

    session_id: int
    xid: int
    zxid: int


LearnerPacket = LearnerRequest | RevalidateAsk | RevalidateAnswer | SyncDone | Assigned
