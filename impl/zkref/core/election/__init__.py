"""Leader election as a pure core: ZooKeeper's FastLeaderElection (`fle`)."""

from zkref.core.election.fle import (
    NO_VOTE,
    Decided,
    Effect,
    FastLeaderElection,
    Notification,
    Requeue,
    Send,
    ServerState,
    Sid,
    Vote,
    better_1419,
    truly_better,
)

__all__ = [
    "NO_VOTE",
    "Decided",
    "Effect",
    "FastLeaderElection",
    "Notification",
    "Requeue",
    "Send",
    "ServerState",
    "Sid",
    "Vote",
    "better_1419",
    "truly_better",
]
