"""Chaos testing: launch ensembles, inject faults, record Jepsen-style histories, check them.

Public entry points: :mod:`zkref.chaos.zookeeper_proc` (Apache ZooKeeper on loopback),
:mod:`zkref.chaos.history`, :mod:`zkref.chaos.checker`, :mod:`zkref.chaos.harness` and
:func:`zkref.chaos.cli.main` (``zkref chaos run|check``).
"""
