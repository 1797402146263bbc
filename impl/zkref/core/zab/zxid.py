"""Zxids: a 64-bit `epoch << 32 | counter`, as ZooKeeper's ZxidUtils.

Rules:
- a zxid is a plain non-negative `int`; the epoch is the high 32 bits, the counter the low 32;
- zxids order first by epoch, then by counter, which is plain integer order;
- a new epoch starts its counter at 0 (the NEWLEADER zxid is `make_zxid(epoch, 0)`).
"""

from __future__ import annotations

COUNTER_BITS = 32
COUNTER_MASK = (1 << COUNTER_BITS) - 1
MAX_EPOCH = (1 << 32) - 1


def make_zxid(epoch: int, counter: int) -> int:
    """ZxidUtils.makeZxid."""
    assert 0 <= epoch <= MAX_EPOCH, epoch
    assert 0 <= counter <= COUNTER_MASK, counter
    return (epoch << COUNTER_BITS) | counter


def zxid_epoch(zxid: int) -> int:
    """ZxidUtils.getEpochFromZxid."""
    return zxid >> COUNTER_BITS


def zxid_counter(zxid: int) -> int:
    """ZxidUtils.getCounterFromZxid."""
    return zxid & COUNTER_MASK


def zxid_hex(zxid: int) -> str:
    """The form ZooKeeper logs and prints (`0x100000002`)."""
    return f"0x{zxid:x}"
