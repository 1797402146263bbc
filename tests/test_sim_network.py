"""The simulator's network and clock: FIFO links, hold/delay/reset, partitions, crashes, seeds."""

from __future__ import annotations

import random

import pytest

from zkref.sim.clock import SimClock
from zkref.sim.network import Network


def net(seed: int = 0, nodes: tuple[int, ...] = (1, 2, 3)) -> Network[int, str]:
    return Network(nodes, SimClock(), random.Random(seed))


def drain(n: Network[int, str], frm: int, to: int) -> list[str]:
    out = []
    while (frm, to) in n.ready_links():
        out.append(n.deliver(frm, to))
    return out


def test_clock_counts_ticks() -> None:
    c = SimClock()
    assert c.advance() == 1 and c.advance(3) == 4 and c.now == 4
    with pytest.raises(AssertionError):
        c.advance(-1)


def test_a_link_is_fifo_and_links_are_independent() -> None:
    n = net()
    for m in ("a", "b", "c"):
        n.send(1, 2, m)
    n.send(2, 1, "x")
    assert sorted(n.ready_links()) == [(1, 2), (2, 1)]
    assert drain(n, 1, 2) == ["a", "b", "c"]
    assert n.in_flight() == 1 and n.in_flight(to=1) == 1 and n.in_flight(to=2) == 0
    with pytest.raises(AssertionError):
        n.deliver(1, 2)


def test_hold_keeps_messages_until_release_in_order() -> None:
    n = net()
    n.send(1, 2, "a")
    n.hold(1, 2)
    n.send(1, 2, "b")
    assert n.ready_links() == [] and n.idle() and n.in_flight() == 2
    n.release(1, 2)
    assert drain(n, 1, 2) == ["a", "b"]


def test_delay_makes_a_message_wait_and_never_lets_a_later_one_overtake() -> None:
    n = net()
    n.set_delay(1, 2, 3)
    n.send(1, 2, "slow")
    n.set_delay(1, 2, 0)
    n.send(1, 2, "fast")
    for _ in range(3):
        assert n.ready_links() == []
        n.clock.advance()
    assert drain(n, 1, 2) == ["slow", "fast"]


def test_reset_drops_what_is_in_flight_only() -> None:
    n = net()
    n.send(1, 2, "a")
    n.send(1, 2, "b")
    assert n.reset(1, 2) == 2
    assert n.links[(1, 2)].dropped == 2
    n.send(1, 2, "c")
    assert drain(n, 1, 2) == ["c"]


def test_partition_cuts_both_ways_until_healed() -> None:
    n = net()
    n.send(1, 2, "lost")
    n.send(2, 1, "lost too")
    n.send(1, 3, "kept")
    n.partition(1, 2)
    assert not n.send(1, 2, "dropped") and not n.send(2, 1, "dropped")
    assert n.in_flight() == 1 and not n.connected(1, 2) and n.connected(1, 3)
    n.heal(2, 1)
    assert n.send(1, 2, "through")
    assert drain(n, 1, 2) == ["through"]


def test_bare_heal_clears_partitions_holds_and_delays() -> None:
    n = net()
    n.partition(1, 2)
    n.hold(2, 3)
    n.set_delay(3, 1, 5)
    n.heal()
    for a, b in ((1, 2), (2, 3), (3, 1)):
        n.send(a, b, "m")
    assert sorted(n.ready_links()) == [(1, 2), (2, 3), (3, 1)]


def test_a_crashed_node_loses_its_links_and_sends_nothing() -> None:
    n = net()
    n.send(1, 2, "a")
    n.send(2, 1, "b")
    n.send(2, 3, "c")
    n.crash(2)
    assert n.ready_links() == []
    assert n.in_flight() == 0
    assert not n.send(2, 3, "x") and not n.send(3, 2, "y")
    n.revive(2)
    assert n.send(3, 2, "z") and drain(n, 3, 2) == ["z"]


def test_random_delivery_is_a_function_of_the_seed() -> None:
    def order(seed: int) -> list[tuple[int, int, str]]:
        n = net(seed)
        for a in (1, 2, 3):
            for b in (1, 2, 3):
                if a != b:
                    for i in range(3):
                        n.send(a, b, f"{a}{b}{i}")
        out = []
        while (d := n.deliver_random()) is not None:
            out.append(d)
        return out

    assert order(7) == order(7)
    assert order(7) != order(8)
    o = order(7)
    assert len(o) == 18
    for a, b in ((1, 2), (3, 1)):  # FIFO per link whatever the interleaving
        assert [m for x, y, m in o if (x, y) == (a, b)] == [f"{a}{b}{i}" for i in range(3)]
