"""Watches: ZooKeeper's two WatchManagers (data and child tables) of one server, pure.

A watcher is a connection id. ZooKeeper registers the ServerCnxn as the watcher, so watches die
with the connection (`remove_watcher`) and a reconnecting client re-sends them with setWatches;
the session itself owns no watches. We do the same.

Rules (ZooKeeper 3.9 WatchManager/DataTree; 3.8 differs only where noted):
- getData and exists register in the *data* table (exists also on a missing node); getChildren
  in the *child* table; each (watcher, path, table) holds a set of modes: STANDARD (one-shot),
  PERSISTENT, PERSISTENT_RECURSIVE. addWatch PERSISTENT goes to both tables, PERSISTENT_RECURSIVE
  to the data table only (so it can never see NodeChildrenChanged);
- NodeCreated / NodeDataChanged on p fire the data table at p; NodeDeleted fires the data table
  at p and then the child table at p, suppressing watchers already notified; NodeChildrenChanged
  fires the child table at p (the parent of the created/deleted node);
- a table fires every watcher at p whatever its modes (STANDARD is then cleared: one-shot), plus
  every PERSISTENT_RECURSIVE watcher on a proper ancestor of p;
- one event per watcher per table trigger, in registration order;
- 3.8 kept a single mode per (watcher, path) (a later getData watch replaced a persistent one);
  3.9 keeps them side by side (ZOOKEEPER-4466) and removeWatches understands the types
  Persistent/PersistentRecursive (3.8 answers MarshallingError). We follow 3.9.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from zkref.wire.constants import EventType, KeeperState, WatcherType
from zkref.wire.records import WatcherEvent

STANDARD = 1
PERSISTENT = 2
PERSISTENT_RECURSIVE = 4

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
    __slots__ = ("_by_watcher", "_child", "_data", "_recursive")

    def __init__(self) -> None:
        self._data: _Table = {}
        self._child: _Table = {}
        # watcher -> paths where it has something in either table
        self._by_watcher: dict[int, set[str]] = {}
        # (path, watcher) entries holding PERSISTENT_RECURSIVE; at 0 the ancestor walk is skipped
        self._recursive = 0

    # --- registration ---------------------------------------------------------------------------
    def _add(self, table: _Table, path: str, watcher: int, mode: int) -> None:
        entries = table.get(path)
        if entries is None:
            entries = table[path] = {}
        old = entries.get(watcher, 0)
        if mode & PERSISTENT_RECURSIVE and not old & PERSISTENT_RECURSIVE:
            self._recursive += 1
        entries[watcher] = old | mode
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
        """addWatch: PERSISTENT in both tables, PERSISTENT_RECURSIVE in the data table only."""
        if recursive:
            self._add(self._data, path, watcher, PERSISTENT_RECURSIVE)
        else:
            self._add(self._data, path, watcher, PERSISTENT)
            self._add(self._child, path, watcher, PERSISTENT)

    # --- triggering ---------------------------------------------------------------------------
    def trigger(self, path: str, event_type: EventType) -> list[tuple[int, WatcherEvent]]:
        """Fire the watches for one data-tree event; [(watcher, event)] in delivery order."""
        if event_type is EventType.NodeCreated or event_type is EventType.NodeDataChanged:
            fired = self._fire(self._data, path, True)
        elif event_type is EventType.NodeDeleted:
            fired = self._fire(self._data, path, True)
            # a watcher already notified from the data table keeps its place: one event each
            fired.update(self._fire(self._child, path, False))
        elif event_type is EventType.NodeChildrenChanged:
            fired = self._fire(self._child, path, False)
        else:
            return []
        if not fired:
            return []
        event = WatcherEvent(int(event_type), int(KeeperState.SyncConnected), path)
        return [(w, event) for w in fired]

    def _fire(self, table: _Table, path: str, recursive: bool) -> dict[int, None]:
        fired: dict[int, None] = {}
        entries = table.get(path)
        if entries:
            for w, modes in list(entries.items()):
                fired[w] = None
                if modes & STANDARD:
                    if modes == STANDARD:
                        del entries[w]
                        self._forget_path(w, path)
                    else:
                        entries[w] = modes & ~STANDARD
            if not entries:
                del table[path]
        if recursive and self._recursive:
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

    def contains(self, path: str, watcher: int, watcher_type: WatcherType) -> bool:
        """DataTree.containsWatcher (3.9)."""
        if watcher_type is WatcherType.Children:
            return self._has(self._child, path, watcher, STANDARD)
        if watcher_type is WatcherType.Data:
            return self._has(self._data, path, watcher, STANDARD)
        if watcher_type is WatcherType.Persistent:
            return self._has(self._data, path, watcher, PERSISTENT)
        if watcher_type is WatcherType.PersistentRecursive:
            return self._has(self._data, path, watcher, PERSISTENT_RECURSIVE)
        assert watcher_type is WatcherType.Any, watcher_type
        return self._has(self._child, path, watcher, 7) or self._has(self._data, path, watcher, 7)

    def remove(self, path: str, watcher: int, watcher_type: WatcherType) -> bool:
        """DataTree.removeWatch (3.9): True when something was removed."""
        if watcher_type is WatcherType.Children:
            removed = self._clear(self._child, path, watcher, STANDARD)
        elif watcher_type is WatcherType.Data:
            removed = self._clear(self._data, path, watcher, STANDARD)
        elif watcher_type is WatcherType.Persistent:
            c = self._clear(self._child, path, watcher, PERSISTENT)
            d = self._clear(self._data, path, watcher, PERSISTENT)
            removed = c or d
        elif watcher_type is WatcherType.PersistentRecursive:
            removed = self._clear(self._data, path, watcher, PERSISTENT_RECURSIVE)
        else:
            assert watcher_type is WatcherType.Any, watcher_type
            c = self._clear(self._child, path, watcher, 7)
            d = self._clear(self._data, path, watcher, 7)
            removed = c or d
        if removed:
            self._forget_path(watcher, path)
        return removed

    def remove_watcher(self, watcher: int) -> None:
        """The connection is gone: drop every watch it held."""
        for path in self._by_watcher.pop(watcher, ()):
            self._clear(self._data, path, watcher, 7)
            self._clear(self._child, path, watcher, 7)

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
