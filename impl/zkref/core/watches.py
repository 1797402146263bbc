"""Watches: ZooKeeper's two WatchManagers (data and child tables) of one server, pure.

A watcher is a connection id. ZooKeeper registers the ServerCnxn as the watcher, so watches die
with the connection (`remove_watcher`) and a reconnecting client re-sends them with setWatches;
the session itself owns no watches. We do the same.

Rules common to 3.8 and 3.9 (WatchManager/DataTree):
- getData and exists register in the *data* table (exists also on a missing node); getChildren
  in the *child* table; addWatch PERSISTENT goes to both tables;
- NodeCreated / NodeDataChanged on p fire the data table at p; NodeDeleted fires the data table
  at p and then the child table at p, suppressing watchers already notified; NodeChildrenChanged
  fires the child table at p (the parent of the created/deleted node);
- a standard (one-shot) watch fires at its own path and is removed; a persistent one fires at its
  own path and stays; a persistent-recursive one also fires for every descendant, and never for
  NodeChildrenChanged; one event per watcher per table trigger, in registration order.

ZooKeeper 3.8 (the default here, `zk38=True`; the Debian server the differential tests run):
- one mode per (watcher, path, table): the last registration wins, so a getData watch on a path
  with a persistent watch turns it into a one-shot one (fixed by ZOOKEEPER-4466 in 3.9);
- PERSISTENT_RECURSIVE is registered in both tables;
- checkWatches(Data|Children|Any) succeeds when *any* connection holds a watch on that path in
  that table (WatchManager.containsWatcher); removeWatches removes only the caller's, any mode;
- WatcherType Persistent(4)/PersistentRecursive(5) do not exist: `contains`/`remove` return
  None and the server answers MarshallingError, as 3.8 does.
ZooKeeper 3.9 (`zk38=False`): modes of one (watcher, path) coexist; PERSISTENT_RECURSIVE lives in
the data table only; check/remove match the caller's watch of the given mode (Data/Children =
standard, Persistent, PersistentRecursive; Any = every mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from zkref.wire.constants import EventType, KeeperState, WatcherType
from zkref.wire.records import WatcherEvent

STANDARD = 1
PERSISTENT = 2
PERSISTENT_RECURSIVE = 4
_ALL = STANDARD | PERSISTENT | PERSISTENT_RECURSIVE
_CREATED = int(EventType.NodeCreated)
_DELETED = int(EventType.NodeDeleted)
_DATA_CHANGED = int(EventType.NodeDataChanged)
_CHILDREN_CHANGED = int(EventType.NodeChildrenChanged)

_Table = dict[str, dict[int, int]]


@dataclass(frozen=True, slots=True)
class WatchesSummary:
    """The `wchs` line: connections watching paths, total watches (data table, as ZooKeeper)."""

    connections: int
    paths: int
    total: int


def _ancestors(path: str) -> Iterator[str]:
    """Proper ancestors of path, nearest first ("/a/b" -> "/a", "/")."""
    while path != "/":
        i = path.rfind("/")
        path = path[:i] if i > 0 else "/"
        yield path


class WatchManager:
    __slots__ = ("_by_watcher", "_child", "_data", "_recursive", "zk38")

    def __init__(self, *, zk38: bool = True) -> None:
        self.zk38 = zk38
        self._data: _Table = {}
        self._child: _Table = {}
        # watcher -> paths where it has something in either table
        self._by_watcher: dict[int, set[str]] = {}
        # entries (either table) holding PERSISTENT_RECURSIVE; at 0 the ancestor walk is skipped
        self._recursive = 0

    # --- registration ---------------------------------------------------------------------------
    def _add(self, table: _Table, path: str, watcher: int, mode: int) -> None:
        entries = table.get(path)
        if entries is None:
            entries = table[path] = {}
        old = entries.get(watcher, 0)
        new = mode if self.zk38 else old | mode
        if new & PERSISTENT_RECURSIVE and not old & PERSISTENT_RECURSIVE:
            self._recursive += 1
        elif old & PERSISTENT_RECURSIVE and not new & PERSISTENT_RECURSIVE:
            self._recursive -= 1
        entries[watcher] = new
        paths = self._by_watcher.get(watcher)
        if paths is None:
            self._by_watcher[watcher] = {path}
        else:
            paths.add(path)

    def add_data_watch(self, path: str, watcher: int) -> None:
        """getData / exists watch (ZooKeeper keeps both in the data table)."""
        self._add(self._data, path, watcher, STANDARD)

    def add_child_watch(self, path: str, watcher: int) -> None:
        self._add(self._child, path, watcher, STANDARD)

    def add_watch(self, path: str, watcher: int, kind: str) -> None:
        """Register a read's watch: kind is "data", "exist" or "child"."""
        if kind == "child":
            self._add(self._child, path, watcher, STANDARD)
        else:
            assert kind in ("data", "exist"), kind
            self._add(self._data, path, watcher, STANDARD)

    def add_persistent(self, path: str, watcher: int, *, recursive: bool) -> None:
        """addWatch / setWatches2: PERSISTENT in both tables; PERSISTENT_RECURSIVE in the data
        table (3.9) or in both (3.8)."""
        if recursive:
            self._add(self._data, path, watcher, PERSISTENT_RECURSIVE)
            if self.zk38:
                self._add(self._child, path, watcher, PERSISTENT_RECURSIVE)
        else:
            self._add(self._data, path, watcher, PERSISTENT)
            self._add(self._child, path, watcher, PERSISTENT)

    # --- triggering ---------------------------------------------------------------------------
    def trigger(self, path: str, event_type: EventType | int) -> list[tuple[int, WatcherEvent]]:
        """Fire the watches for one data-tree event; [(watcher, event)] in delivery order.
        (`==`, not `is`: the tree may hand over plain ints.)"""
        if event_type in (_CREATED, _DATA_CHANGED):
            fired = self._fire(self._data, path, False)
        elif event_type == _DELETED:
            fired = self._fire(self._data, path, False)
            # a watcher already notified from the data table keeps its place: one event each
            fired.update(self._fire(self._child, path, False))
        elif event_type == _CHILDREN_CHANGED:
            fired = self._fire(self._child, path, True)
        else:
            return []
        if not fired:
            return []
        event = WatcherEvent(int(event_type), int(KeeperState.SyncConnected), path)
        return [(w, event) for w in fired]

    def _fire(self, table: _Table, path: str, children_changed: bool) -> dict[int, None]:
        fired: dict[int, None] = {}
        entries = table.get(path)
        if entries:
            for w, modes in list(entries.items()):
                if children_changed and modes == PERSISTENT_RECURSIVE:
                    continue  # 3.8: a recursive watcher in the child table skips these
                fired[w] = None
                if modes & STANDARD:
                    if modes == STANDARD:
                        del entries[w]
                        self._forget_path(w, path)
                    else:
                        entries[w] = modes & ~STANDARD
            if not entries:
                del table[path]
        if self._recursive and not children_changed:
            for p in _ancestors(path):
                up = table.get(p)
                if up:
                    for w, modes in up.items():
                        if modes & PERSISTENT_RECURSIVE:
                            fired[w] = None
        return fired

    def _forget_path(self, watcher: int, path: str) -> None:
        """Drop path from the watcher's index once neither table holds it there."""
        d = self._data.get(path)
        c = self._child.get(path)
        if (d is not None and watcher in d) or (c is not None and watcher in c):
            return
        paths = self._by_watcher.get(watcher)
        if paths is not None:
            paths.discard(path)
            if not paths:
                del self._by_watcher[watcher]

    # --- checkWatches / removeWatches ---------------------------------------------------------
    @staticmethod
    def _has(table: _Table, path: str, watcher: int, mask: int) -> bool:
        entries = table.get(path)
        return entries is not None and bool(entries.get(watcher, 0) & mask)

    def _clear(self, table: _Table, path: str, watcher: int, mask: int) -> bool:
        entries = table.get(path)
        if entries is None:
            return False
        modes = entries.get(watcher, 0)
        if not modes & mask:
            return False
        if modes & mask & PERSISTENT_RECURSIVE:
            self._recursive -= 1
        left = modes & ~mask
        if left:
            entries[watcher] = left
        else:
            del entries[watcher]
            if not entries:
                del table[path]
        return True

    def contains(self, path: str, watcher: int, watcher_type: WatcherType) -> bool | None:
        """checkWatches (DataTree.containsWatcher); None: the type does not exist (3.8)."""
        if self.zk38:
            if watcher_type is WatcherType.Children:
                return bool(self._child.get(path))
            if watcher_type is WatcherType.Data:
                return bool(self._data.get(path))
            if watcher_type is WatcherType.Any:
                return bool(self._child.get(path)) or bool(self._data.get(path))
            return None
        if watcher_type is WatcherType.Children:
            return self._has(self._child, path, watcher, STANDARD)
        if watcher_type is WatcherType.Data:
            return self._has(self._data, path, watcher, STANDARD)
        if watcher_type is WatcherType.Persistent:
            return self._has(self._data, path, watcher, PERSISTENT)
        if watcher_type is WatcherType.PersistentRecursive:
            return self._has(self._data, path, watcher, PERSISTENT_RECURSIVE)
        assert watcher_type is WatcherType.Any, watcher_type
        return self._has(self._child, path, watcher, _ALL) or self._has(
            self._data, path, watcher, _ALL
        )

    def remove(self, path: str, watcher: int, watcher_type: WatcherType) -> bool | None:
        """removeWatches (DataTree.removeWatch): True when something of the caller's was
        removed; None: the type does not exist (3.8)."""
        if watcher_type is WatcherType.Children:
            removed = self._clear(self._child, path, watcher, _ALL if self.zk38 else STANDARD)
        elif watcher_type is WatcherType.Data:
            removed = self._clear(self._data, path, watcher, _ALL if self.zk38 else STANDARD)
        elif watcher_type is WatcherType.Any:
            c = self._clear(self._child, path, watcher, _ALL)
            d = self._clear(self._data, path, watcher, _ALL)
            removed = c or d
        elif self.zk38:
            return None
        elif watcher_type is WatcherType.Persistent:
            c = self._clear(self._child, path, watcher, PERSISTENT)
            d = self._clear(self._data, path, watcher, PERSISTENT)
            removed = c or d
        else:
            assert watcher_type is WatcherType.PersistentRecursive, watcher_type
            removed = self._clear(self._data, path, watcher, PERSISTENT_RECURSIVE)
        if removed:
            self._forget_path(watcher, path)
        return removed

    def remove_watcher(self, watcher: int) -> None:
        """The connection is gone: drop every watch it held."""
        for path in self._by_watcher.pop(watcher, ()):
            self._clear(self._data, path, watcher, _ALL)
            self._clear(self._child, path, watcher, _ALL)

    # --- introspection --------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """zk_watch_count: entries in the data table plus entries in the child table."""
        return sum(map(len, self._data.values())) + sum(map(len, self._child.values()))

    def summary(self) -> WatchesSummary:
        """`wchs`: ZooKeeper summarises the data table only."""
        watchers: set[int] = set()
        total = 0
        for entries in self._data.values():
            watchers.update(entries)
            total += len(entries)
        return WatchesSummary(len(watchers), len(self._data), total)

    def by_watcher(self) -> dict[int, tuple[str, ...]]:
        """`wchc` (data table, as ZooKeeper): watcher -> paths, sorted."""
        out: dict[int, list[str]] = {}
        for path, entries in self._data.items():
            for w in entries:
                out.setdefault(w, []).append(path)
        return {w: tuple(sorted(ps)) for w, ps in sorted(out.items())}

    def by_path(self) -> dict[str, tuple[int, ...]]:
        """`wchp` (data table, as ZooKeeper): path -> watchers, sorted."""
        return {p: tuple(sorted(self._data[p])) for p in sorted(self._data) if self._data[p]}

    def paths_of(self, watcher: int) -> tuple[str, ...]:
        """Every path where the watcher has a watch in either table."""
        return tuple(sorted(self._by_watcher.get(watcher, ())))
