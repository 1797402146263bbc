"""Deterministic simulation: a tick clock, a network of per-pair FIFO links, and clusters of
pure cores driven from one seed (`ElectionCluster` for FastLeaderElection)."""

from zkref.sim.clock import SimClock
from zkref.sim.election_cluster import ElectionCluster, InvariantViolation, SimFailure
from zkref.sim.network import Link, Network, Node

__all__ = [
    "ElectionCluster",
    "InvariantViolation",
    "Link",
    "Network",
    "Node",
    "SimClock",
    "SimFailure",
]
