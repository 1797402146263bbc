"""SessionTracker: ZooKeeper's session ids, expiry buckets, passwords and timeouts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkref.core.sessions import SessionTracker, initial_session_id, session_password
from zkref.wire.constants import CONTAINER_EPHEMERAL_OWNER


def tracker(start_ms: int = 0, *, server_id: int = 1, tick: int = 2000) -> SessionTracker:
    return SessionTracker(
        server_id=server_id,
        tick_time_ms=tick,
        min_session_timeout_ms=2 * tick,
        max_session_timeout_ms=20 * tick,
        secret=b"secret",
        start_ms=start_ms,
    )


def test_first_session_id_is_zookeepers_shape() -> None:
    # (serverId << 56) | ((elapsed << 24) >>> 8)
    assert initial_session_id(1, 1000) == (1 << 56) | (1000 << 16)
    assert initial_session_id(0, 0) == 0
    # the time's top bits are shifted out of 64 bits, then the >>> 8 leaves the top byte free
    t = (1 << 40) + 5
    assert initial_session_id(2, t) == (2 << 56) | (5 << 16)


def test_session_id_is_a_signed_java_long() -> None:
    sid = initial_session_id(0xFF, 7)
    assert sid < 0
    assert sid == ((0xFF << 56) | (7 << 16)) - (1 << 64)


def test_container_sentinel_is_skipped() -> None:
    assert initial_session_id(0x80, 0) == CONTAINER_EPHEMERAL_OWNER + 1


def test_ids_increment() -> None:
    t = tracker(1000)
    a = t.create_session(4000, 1000)
    b = t.create_session(4000, 1000)
    assert a == initial_session_id(1, 1000)
    assert b == a + 1
    assert len(t) == 2


def test_password_is_deterministic_per_secret_and_id() -> None:
    t = tracker()
    sid = t.create_session(4000, 0)
    pw = t.password(sid)
    assert len(pw) == 16
    assert pw == session_password(b"secret", sid)
    assert pw != session_password(b"other", sid)
    assert pw != t.password(sid + 1)
    assert t.check_password(sid, pw)
    assert not t.check_password(sid, bytes(16))
    assert not t.check_password(0, session_password(b"secret", 0))


def test_timeout_is_clamped() -> None:
    t = tracker(tick=2000)
    assert t.negotiate_timeout(1) == 4000
    assert t.negotiate_timeout(3999) == 4000
    assert t.negotiate_timeout(10_000) == 10_000
    assert t.negotiate_timeout(40_001) == 40_000
    assert t.negotiate_timeout(10**9) == 40_000


def test_expiry_rounds_up_to_the_next_tick_boundary() -> None:
    t = tracker(0, tick=2000)
    sid = t.create_session(4000, 500)  # 4500 -> bucket 6000
    s = t.get(sid)
    assert s is not None and s.expiry_ms == 6000
    assert t.expired(5999) == []
    assert t.expired(6000) == [sid]
    assert not t.is_live(sid)
    assert sid in t  # known until removed (closeSession applied)


def test_exact_multiple_goes_to_the_next_bucket() -> None:
    t = tracker(0, tick=2000)
    sid = t.create_session(4000, 0)  # 4000 -> 6000 (roundToNextInterval is strict)
    s = t.get(sid)
    assert s is not None and s.expiry_ms == 6000


def test_touch_moves_the_expiry() -> None:
    t = tracker(0, tick=1000)
    sid = t.create_session(3000, 0)  # -> 4000
    assert t.touch(sid, 3000, 2500)  # -> 6000
    assert t.expired(4000) == []
    assert t.expired(5999) == []
    assert t.expired(6000) == [sid]


def test_closing_and_unknown_sessions_cannot_be_touched() -> None:
    t = tracker()
    sid = t.create_session(4000, 0)
    assert not t.touch(sid + 1, 4000, 0)
    t.set_closing(sid)
    assert not t.touch(sid, 4000, 0)
    assert t.expired(10**6) == []  # a closing session is not handed out again
    t.remove(sid)
    assert sid not in t


def test_removed_session_does_not_expire() -> None:
    t = tracker(0, tick=1000)
    a = t.create_session(2000, 0)
    b = t.create_session(2000, 0)
    t.remove(a)
    assert t.expired(3000) == [b]


def test_expired_orders_buckets_then_ids_and_covers_skipped_ticks() -> None:
    t = tracker(0, tick=1000)
    late = t.create_session(5000, 0)  # 6000
    early_b = t.create_session(2000, 0)  # 3000
    early_a = t.create_session(2000, 0)  # 3000
    assert t.expired(10_000) == [early_b, early_a, late]
    assert t.next_expiration_ms == 11_000


def test_restore_gives_fresh_expiry_and_timeouts_round_trip() -> None:
    t = tracker(50_000, tick=1000)
    t.restore({7: 4000, 5: 2000}, 50_000)
    assert t.session_timeouts() == {5: 2000, 7: 4000}
    assert t.expiry_buckets() == {53_000: (5,), 55_000: (7,)}
    assert t.expired(53_000) == [5]
    assert t.is_live(7)


def test_session_id_zero_is_never_handed_out() -> None:
    t = tracker(0, server_id=0)
    assert t.create_session(4000, 0) == 1
    assert t.create_session(4000, 0) == 2


@settings(max_examples=200, deadline=None)
@given(
    tick=st.integers(1, 3000),
    timeout=st.integers(1, 60_000),
    gaps=st.lists(st.integers(0, 100_000), max_size=12),
)
def test_expiry_lands_in_the_tick_after_the_timeout(
    tick: int, timeout: int, gaps: list[int]
) -> None:
    """Touched at t, a session expires at the first tick boundary strictly after t + timeout:
    never before the timeout has run out, never more than one tickTime after it."""
    t = SessionTracker(
        server_id=1,
        tick_time_ms=tick,
        min_session_timeout_ms=1,
        max_session_timeout_ms=10**9,
        secret=b"s",
        start_ms=0,
    )
    sid = t.create_session(timeout, 0)
    last_touch = 0
    now = 0
    for gap in gaps:
        # poll on every tick boundary up to the next packet
        target = now + gap
        while now < target:
            now = min(target, (now // tick + 1) * tick)
            if t.expired(now) == [sid]:
                assert last_touch + timeout < now <= last_touch + timeout + tick
                return
        assert t.touch(sid, timeout, now)
        last_touch = now
    deadline = last_touch + timeout + tick
    assert t.expired(deadline) == [sid]
