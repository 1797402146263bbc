"""A simulated network: one FIFO link per ordered pair of nodes, faults under the simulator's
control, messages opaque.

Rules:
- a link delivers in the order it was sent (FIFO), only its head, and only once the head is
  ready (`sent_at + delay_ticks <= now`) and the link is not held;
- `reset` drops what is in flight on a link (a TCP connection that broke); `partition(a, b)`
  resets both directions and drops every later send between a and b until `heal`;
- a node that is `down` (crashed) loses its links in both directions and sends nothing;
- every random choice comes from the one `random.Random` the simulator passes in, so a seed
  replays a run exactly.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from zkref.sim.clock import SimClock

K = TypeVar("K", bound=Hashable)
M = TypeVar("M")
K_contra = TypeVar("K_contra", contravariant=True)
M_contra = TypeVar("M_contra", contravariant=True)
E_co = TypeVar("E_co", covariant=True)


class Node(Protocol[K_contra, M_contra, E_co]):
    """What the simulator drives: a pure core that answers inputs with effects."""

    def receive(self, frm: K_contra, msg: M_contra) -> Sequence[E_co]: ...

    def tick(self) -> Sequence[E_co]: ...


@dataclass(slots=True)
class InFlight(Generic[M]):
    msg: M
    sent_at: int
    ready_at: int


@dataclass(slots=True)
class Link(Generic[M]):
    """The FIFO link from one node to another."""

    queue: deque[InFlight[M]] = field(default_factory=deque)
    held: bool = False
    delay_ticks: int = 0
    sent: int = 0
    delivered: int = 0
    dropped: int = 0

    def ready(self, now: int) -> bool:
        return bool(self.queue) and not self.held and self.queue[0].ready_at <= now


class Network(Generic[K, M]):
    def __init__(self, nodes: Iterable[K], clock: SimClock, rng: random.Random) -> None:
        self.nodes: list[K] = list(nodes)
        self.clock = clock
        self.rng = rng
        self.links: dict[tuple[K, K], Link[M]] = {
            (a, b): Link() for a in self.nodes for b in self.nodes if a != b
        }
        self.partitions: set[frozenset[K]] = set()
        self.down: set[K] = set()

    # ------------------------------------------------------------------ traffic

    def send(self, frm: K, to: K, msg: M) -> bool:
        """Queue `msg` on the link frm -> to; False if it was dropped (partition, node down)."""
        link = self.links[(frm, to)]
        if frm in self.down or to in self.down or self.partitioned(frm, to):
            link.dropped += 1
            return False
        now = self.clock.now
        link.queue.append(InFlight(msg, now, now + link.delay_ticks))
        link.sent += 1
        return True

    def ready_links(self) -> list[tuple[K, K]]:
        now = self.clock.now
        return [pair for pair, link in self.links.items() if link.ready(now)]

    def deliver(self, frm: K, to: K) -> M:
        link = self.links[(frm, to)]
        assert link.ready(self.clock.now), (frm, to)
        link.delivered += 1
        return link.queue.popleft().msg

    def deliver_random(self) -> tuple[K, K, M] | None:
        ready = self.ready_links()
        if not ready:
            return None
        frm, to = self.rng.choice(ready)
        return frm, to, self.deliver(frm, to)

    def in_flight(self, to: K | None = None) -> int:
        return sum(len(link.queue) for (_, b), link in self.links.items() if to in (None, b))

    def idle(self) -> bool:
        """No message can be delivered now."""
        return not self.ready_links()

    # ------------------------------------------------------------------ faults

    def reset(self, frm: K, to: K) -> int:
        """The connection frm -> to broke: what was in flight is lost."""
        link = self.links[(frm, to)]
        lost = len(link.queue)
        link.dropped += lost
        link.queue.clear()
        return lost

    def hold(self, frm: K, to: K) -> None:
        self.links[(frm, to)].held = True

    def release(self, frm: K, to: K) -> None:
        self.links[(frm, to)].held = False

    def set_delay(self, frm: K, to: K, ticks: int) -> None:
        """Later sends on frm -> to wait `ticks` before they can be delivered (FIFO is kept:
        a message never overtakes the one before it)."""
        assert ticks >= 0
        self.links[(frm, to)].delay_ticks = ticks

    def partition(self, a: K, b: K) -> None:
        assert a != b
        self.partitions.add(frozenset((a, b)))
        self.reset(a, b)
        self.reset(b, a)

    def partitioned(self, a: K, b: K) -> bool:
        return frozenset((a, b)) in self.partitions

    def heal(self, a: K | None = None, b: K | None = None) -> None:
        """Heal the partition a|b, or every partition, hold and delay when called bare."""
        if a is not None and b is not None:
            self.partitions.discard(frozenset((a, b)))
            return
        self.partitions.clear()
        for link in self.links.values():
            link.held = False
            link.delay_ticks = 0

    def connected(self, a: K, b: K) -> bool:
        return a not in self.down and b not in self.down and not self.partitioned(a, b)

    def crash(self, node: K) -> None:
        """The node is down: every link to and from it loses what it carried."""
        self.down.add(node)
        for other in self.nodes:
            if other != node:
                self.reset(node, other)
                self.reset(other, node)

    def revive(self, node: K) -> None:
        self.down.discard(node)
