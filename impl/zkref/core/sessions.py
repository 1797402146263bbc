"""Session tracking: ZooKeeper's SessionTrackerImpl with its ExpiryQueue, without threads or clocks.

Rules:
- a session expires at the first tickTime boundary strictly after `now + timeout`
  (ExpiryQueue.roundToNextInterval); every packet moves it to a later bucket (touch);
- `expired(now)` hands out every session whose bucket is due and marks it closing; a closing
  session (expired, or with a client closeSession on its way) can no longer be touched or
  re-attached, is never handed out twice, and stays known until `remove` (which the server calls
  when the closeSession txn is applied);
- the first session id is `(server_id << 56) | ((start_ms << 24) >>> 8)` (64-bit, Java's
  `>>>`), each next one +1, skipping the container sentinel Long.MIN_VALUE;
- the password is a pure function of (secret, session id), so a restart with the same secret
  accepts the passwords of restored sessions (ZooKeeper: Random(sessionId ^ superSecret));
- restored sessions get a fresh expiry measured from the restore time, as ZooKeeper's tracker
  does when it is constructed from a snapshot's session map.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from zkref.wire.constants import CONTAINER_EPHEMERAL_OWNER, SESSION_PASSWORD_LEN

_MASK64 = (1 << 64) - 1


def _signed64(v: int) -> int:
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def initial_session_id(server_id: int, start_ms: int) -> int:
    """SessionTrackerImpl.initializeNextSessionId, with Java's 64-bit wrap-around."""
    nxt = ((start_ms << 24) & _MASK64) >> 8
    nxt |= (server_id << 56) & _MASK64
    sid = _signed64(nxt)
    if sid == CONTAINER_EPHEMERAL_OWNER:
        sid += 1
    return sid


def session_password(secret: bytes, session_id: int) -> bytes:
    return hashlib.sha256(secret + (session_id & _MASK64).to_bytes(8, "big")).digest()[
        :SESSION_PASSWORD_LEN
    ]


@dataclass(slots=True)
class Session:
    session_id: int
    timeout_ms: int
    expiry_ms: int
    closing: bool = False


class SessionTracker:
    """The live sessions of one server, their timeouts and expiry buckets."""

    __slots__ = (
        "_buckets",
        "_next_expiration_ms",
        "_next_id",
        "_secret",
        "_sessions",
        "max_session_timeout_ms",
        "min_session_timeout_ms",
        "tick_time_ms",
    )

    def __init__(
        self,
        *,
        server_id: int,
        tick_time_ms: int,
        min_session_timeout_ms: int,
        max_session_timeout_ms: int,
        secret: bytes,
        start_ms: int,
    ) -> None:
        assert tick_time_ms > 0, tick_time_ms
        self.tick_time_ms = tick_time_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self._secret = secret
        self._sessions: dict[int, Session] = {}
        self._buckets: dict[int, set[int]] = {}
        self._next_id = initial_session_id(server_id, start_ms)
        self._next_expiration_ms = self._round_up(start_ms)

    # --- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._sessions

    def get(self, session_id: int) -> Session | None:
        return self._sessions.get(session_id)

    def is_live(self, session_id: int) -> bool:
        s = self._sessions.get(session_id)
        return s is not None and not s.closing

    def session_timeouts(self) -> dict[int, int]:
        """{session id: timeout ms}: what a snapshot stores."""
        return {sid: s.timeout_ms for sid, s in self._sessions.items()}

    def expiry_buckets(self) -> dict[int, tuple[int, ...]]:
        """{expiry time ms: session ids}, ascending (the `dump` four-letter word)."""
        return {
            t: tuple(sorted(self._buckets[t])) for t in sorted(self._buckets) if self._buckets[t]
        }

    @property
    def next_expiration_ms(self) -> int:
        return self._next_expiration_ms

    # --- passwords and timeouts ---------------------------------------------------------------
    def password(self, session_id: int) -> bytes:
        return session_password(self._secret, session_id)

    def check_password(self, session_id: int, passwd: bytes) -> bool:
        return session_id != 0 and passwd == self.password(session_id)

    def negotiate_timeout(self, requested_ms: int) -> int:
        """Clamp to [min, max] as processConnectRequest does (min first, then max)."""
        t = requested_ms
        if t < self.min_session_timeout_ms:
            t = self.min_session_timeout_ms
        if t > self.max_session_timeout_ms:
            t = self.max_session_timeout_ms
        return t

    # --- transitions --------------------------------------------------------------------------
    def create_session(self, timeout_ms: int, now_ms: int) -> int:
        sid = self._next_id
        if sid == 0:
            sid = 1  # 0 means "no session" in a ConnectRequest (only server id 0 at time 0)
        self._next_id = _signed64(sid + 1)
        if self._next_id == CONTAINER_EPHEMERAL_OWNER:
            self._next_id += 1
        self.track(sid, timeout_ms, now_ms)
        return sid

    def track(self, session_id: int, timeout_ms: int, now_ms: int) -> None:
        """Start tracking a session (new, restored from a snapshot, or replayed from the log)."""
        s = self._sessions.get(session_id)
        if s is None:
            s = Session(session_id, timeout_ms, 0)
            self._sessions[session_id] = s
        else:
            s.timeout_ms = timeout_ms
        self._update_expiry(s, timeout_ms, now_ms)

    def restore(self, sessions: Mapping[int, int], now_ms: int) -> None:
        for sid in sorted(sessions):
            self.track(sid, sessions[sid], now_ms)

    def touch(self, session_id: int, timeout_ms: int, now_ms: int) -> bool:
        """False for an unknown or closing session (ZooKeeper then drops the packet)."""
        s = self._sessions.get(session_id)
        if s is None or s.closing:
            return False
        self._update_expiry(s, timeout_ms, now_ms)
        return True

    def set_closing(self, session_id: int) -> None:
        """A closeSession is on its way: no more touches, and no second expiry for it."""
        s = self._sessions.get(session_id)
        if s is not None:
            s.closing = True
            self._unbucket(s)

    def _unbucket(self, s: Session) -> None:
        bucket = self._buckets.get(s.expiry_ms)
        if bucket is not None:
            bucket.discard(s.session_id)
            if not bucket:
                del self._buckets[s.expiry_ms]

    def remove(self, session_id: int) -> None:
        s = self._sessions.pop(session_id, None)
        if s is not None:
            self._unbucket(s)

    def expired(self, now_ms: int) -> list[int]:
        """Sessions whose bucket is due, oldest bucket first, ids ascending; marks them closing."""
        if now_ms < self._next_expiration_ms:
            return []
        due = sorted(t for t in self._buckets if t <= now_ms)
        out: list[int] = []
        for t in due:
            for sid in sorted(self._buckets.pop(t)):
                s = self._sessions[sid]
                assert s.expiry_ms == t, (sid, s.expiry_ms, t)
                s.closing = True
                out.append(sid)
        self._next_expiration_ms = self._round_up(now_ms)
        return out

    # --- internals ----------------------------------------------------------------------------
    def _round_up(self, t: int) -> int:
        return (t // self.tick_time_ms + 1) * self.tick_time_ms

    def _update_expiry(self, s: Session, timeout_ms: int, now_ms: int) -> None:
        new = self._round_up(now_ms + timeout_ms)
        old = s.expiry_ms
        if new == old and not s.closing:
            return  # a live session is always in its bucket
        self._unbucket(s)
        self._buckets.setdefault(new, set()).add(s.session_id)
        s.expiry_ms = new
