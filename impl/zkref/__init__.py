"""zkref: a typed, spec-driven reference implementation of Apache ZooKeeper."""

__version__ = "0.1.0"
