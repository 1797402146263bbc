"""Deterministic simulation: a tick clock (`clock`), a network of per-pair FIFO links (`network`),
and clusters of pure cores driven from one seed (`election_cluster.ElectionCluster` for
FastLeaderElection; run it with `python -m zkref.sim.election_cluster --help`)."""

from zkref.sim.clock import SimClock
from zkref.sim.network import Link, Network, Node

__all__ = ["Link", "Network", "Node", "SimClock"]
