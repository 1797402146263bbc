"""Effects of the Zab cores: what the host (simulator or asyncio shell) must do, in order.

Rules:
- durability points are separate effects (`FsyncLog`, `TruncateLog`, `WriteAcceptedEpoch`,
  `WriteCurrentEpoch`), so a host can crash between any two of them;
- `FsyncLog` is answered later by `QuorumPeer.persisted` (the spec's NodeFsyncLog); the epoch
  files and truncation are durable when the effect has run;
- a `Send` that follows a durability effect in one list leaves only once that effect is durable;
- `Apply` comes in zxid order, once per txn per incarnation of the data tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zkref.core.zab.messages import QuorumPacket, ServerState, Sid, Txn


@dataclass(frozen=True, slots=True)
class Send:
    to: Sid
    msg: QuorumPacket


@dataclass(frozen=True, slots=True)
class AppendTxns:
    txns: tuple[Txn, ...]


@dataclass(frozen=True, slots=True)
class FsyncLog:
    upto_zxid: int


@dataclass(frozen=True, slots=True)
class TruncateLog:
    """Cut the log back to the txns with zxid <= `zxid`; durable when done. A data tree that
    applied more than that is rebuilt from what is kept (ZooKeeper reloads its database)."""

    zxid: int


@dataclass(frozen=True, slots=True)
class WriteAcceptedEpoch:
    epoch: int


@dataclass(frozen=True, slots=True)
class WriteCurrentEpoch:
    epoch: int


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """SNAP: the log becomes `snapshot` (durable only at the next fsync) and the data tree is
    emptied; it is rebuilt by the `Apply`s that follow as the txns are committed."""

    zxid: int
    snapshot: tuple[Txn, ...]


@dataclass(frozen=True, slots=True)
class Apply:
    txn: Txn


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The server's role changed. To LOOKING: every quorum connection it has is closed (what
    was in flight on them is lost) and its peers get `QuorumPeer.link_down`."""

    state: ServerState
    leader: Sid | None


@dataclass(frozen=True, slots=True)
class Trace:
    """One record per spec action, after the update; `post` keys are the spec's variables."""

    action: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    post: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


Effect = (
    Send
    | AppendTxns
    | FsyncLog
    | TruncateLog
    | WriteAcceptedEpoch
    | WriteCurrentEpoch
    | InstallSnapshot
    | Apply
    | StateChanged
    | Trace
)

DURABILITY = (FsyncLog, TruncateLog, WriteAcceptedEpoch, WriteCurrentEpoch)


def without_traces(effects: list[Effect]) -> list[Effect]:
    return [e for e in effects if not isinstance(e, Trace)]
