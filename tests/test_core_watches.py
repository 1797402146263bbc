"""WatchManager: ZooKeeper's firing rules for one-shot, persistent and recursive watches."""

from __future__ import annotations

from zkref.core.watches import WatchesSummary, WatchManager
from zkref.wire.constants import EventType, KeeperState, WatcherType
from zkref.wire.records import WatcherEvent

CREATED = EventType.NodeCreated
DELETED = EventType.NodeDeleted
CHANGED = EventType.NodeDataChanged
CHILDREN = EventType.NodeChildrenChanged


def ev(t: EventType, path: str) -> WatcherEvent:
    return WatcherEvent(int(t), int(KeeperState.SyncConnected), path)


def fired(wm: WatchManager, path: str, t: EventType) -> list[tuple[int, WatcherEvent]]:
    return wm.trigger(path, t)


def test_data_watch_is_one_shot() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    assert fired(wm, "/a", CHANGED) == [(1, ev(CHANGED, "/a"))]
    assert fired(wm, "/a", CHANGED) == []
    assert wm.count == 0


def test_exist_watch_fires_on_create_and_data_watch_on_create() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "exist")
    wm.add_watch("/a", 2, "data")
    assert fired(wm, "/a", CREATED) == [(1, ev(CREATED, "/a")), (2, ev(CREATED, "/a"))]


def test_child_watch_ignores_data_events_and_fires_on_children_changed() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "child")
    assert fired(wm, "/a", CHANGED) == []
    assert fired(wm, "/a", CREATED) == []
    assert fired(wm, "/a", CHILDREN) == [(1, ev(CHILDREN, "/a"))]
    assert fired(wm, "/a", CHILDREN) == []


def test_data_watch_ignores_children_changed() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    assert fired(wm, "/a", CHILDREN) == []
    assert wm.count == 1


def test_delete_fires_data_and_child_watches_once_per_watcher() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    wm.add_watch("/a", 1, "child")
    wm.add_watch("/a", 2, "child")
    wm.add_watch("/a", 3, "exist")
    assert fired(wm, "/a", DELETED) == [
        (1, ev(DELETED, "/a")),
        (3, ev(DELETED, "/a")),
        (2, ev(DELETED, "/a")),
    ]
    assert wm.count == 0


def test_watch_on_other_path_or_parent_does_not_fire() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    wm.add_watch("/a/b/c", 2, "data")
    assert fired(wm, "/a/b", CHANGED) == []
    assert wm.count == 2


def test_persistent_watch_fires_data_and_child_events_and_stays() -> None:
    wm = WatchManager()
    wm.add_persistent("/a", 1, recursive=False)
    for _ in range(2):
        assert fired(wm, "/a", CHANGED) == [(1, ev(CHANGED, "/a"))]
        assert fired(wm, "/a", CHILDREN) == [(1, ev(CHILDREN, "/a"))]
    assert fired(wm, "/a/b", CREATED) == []
    assert fired(wm, "/a", DELETED) == [(1, ev(DELETED, "/a"))]
    assert fired(wm, "/a", CREATED) == [(1, ev(CREATED, "/a"))]


def test_recursive_watch_covers_subtree_but_never_children_changed() -> None:
    wm = WatchManager()
    wm.add_persistent("/a", 1, recursive=True)
    assert fired(wm, "/a/b", CREATED) == [(1, ev(CREATED, "/a/b"))]
    assert fired(wm, "/a/b/c", CHANGED) == [(1, ev(CHANGED, "/a/b/c"))]
    assert fired(wm, "/a/b", DELETED) == [(1, ev(DELETED, "/a/b"))]
    assert fired(wm, "/a", CHANGED) == [(1, ev(CHANGED, "/a"))]
    assert fired(wm, "/a", CHILDREN) == []
    assert fired(wm, "/ab", CREATED) == []  # a sibling with a common prefix is not below /a
    assert fired(wm, "/", CHANGED) == []


def test_recursive_on_root_sees_everything() -> None:
    wm = WatchManager()
    wm.add_persistent("/", 4, recursive=True)
    assert fired(wm, "/x/y", CREATED) == [(4, ev(CREATED, "/x/y"))]


def test_one_event_per_watcher_with_one_shot_and_recursive() -> None:
    wm = WatchManager()
    wm.add_persistent("/a", 1, recursive=True)
    wm.add_watch("/a/b", 1, "data")
    wm.add_watch("/a/b", 2, "data")
    assert fired(wm, "/a/b", CHANGED) == [(1, ev(CHANGED, "/a/b")), (2, ev(CHANGED, "/a/b"))]
    # the one-shot part is gone, the recursive one stays
    assert fired(wm, "/a/b", CHANGED) == [(1, ev(CHANGED, "/a/b"))]


def test_standard_and_persistent_modes_coexist_on_one_path_in_3_9() -> None:
    # ZooKeeper 3.9 (ZOOKEEPER-4466): a getData watch does not replace a persistent one
    wm = WatchManager(zk38=False)
    wm.add_persistent("/a", 1, recursive=False)
    wm.add_watch("/a", 1, "data")
    assert fired(wm, "/a", CHANGED) == [(1, ev(CHANGED, "/a"))]
    assert not wm.contains("/a", 1, WatcherType.Data)
    assert wm.contains("/a", 1, WatcherType.Persistent)
    assert fired(wm, "/a", CHANGED) == [(1, ev(CHANGED, "/a"))]


def test_last_registration_wins_in_3_8() -> None:
    # 3.8: the getData watch replaces the persistent mode in the data table (one-shot now) ...
    wm = WatchManager()
    wm.add_persistent("/a", 1, recursive=False)
    wm.add_watch("/a", 1, "data")
    assert fired(wm, "/a", CHANGED) == [(1, ev(CHANGED, "/a"))]
    assert fired(wm, "/a", CHANGED) == []
    # ... while the child table keeps its persistent watch
    assert fired(wm, "/a", CHILDREN) == [(1, ev(CHILDREN, "/a"))]
    assert fired(wm, "/a", CHILDREN) == [(1, ev(CHILDREN, "/a"))]


def test_recursive_in_the_child_table_in_3_8() -> None:
    wm = WatchManager()
    wm.add_persistent("/a", 1, recursive=True)
    wm.add_watch("/a", 1, "data")  # data table: now one-shot on /a, no longer recursive
    assert fired(wm, "/a/b", CREATED) == []
    # the child table still holds the recursive watch: deletions below /a still arrive
    assert fired(wm, "/a/b", DELETED) == [(1, ev(DELETED, "/a/b"))]
    assert fired(wm, "/a", CHILDREN) == []


def test_contains_by_type_in_3_9() -> None:
    wm = WatchManager(zk38=False)
    wm.add_watch("/d", 1, "data")
    wm.add_watch("/c", 1, "child")
    wm.add_persistent("/p", 1, recursive=False)
    wm.add_persistent("/r", 1, recursive=True)
    table = {
        WatcherType.Data: {"/d"},
        WatcherType.Children: {"/c"},
        WatcherType.Persistent: {"/p"},
        WatcherType.PersistentRecursive: {"/r"},
        WatcherType.Any: {"/d", "/c", "/p", "/r"},
    }
    for wtype, paths in table.items():
        for path in ("/d", "/c", "/p", "/r"):
            assert wm.contains(path, 1, wtype) is (path in paths), (wtype, path)
            assert not wm.contains(path, 2, wtype)


def test_contains_by_type_in_3_8() -> None:
    wm = WatchManager()
    wm.add_watch("/d", 1, "data")
    wm.add_watch("/c", 1, "child")
    wm.add_persistent("/p", 1, recursive=False)
    wm.add_persistent("/r", 1, recursive=True)
    table = {
        WatcherType.Data: {"/d", "/p", "/r"},
        WatcherType.Children: {"/c", "/p", "/r"},
        WatcherType.Any: {"/d", "/c", "/p", "/r"},
    }
    for wtype, paths in table.items():
        for path in ("/d", "/c", "/p", "/r", "/x"):
            # any connection's watch on the path counts (WatchManager.containsWatcher)
            assert wm.contains(path, 1, wtype) is (path in paths), (wtype, path)
            assert wm.contains(path, 2, wtype) is (path in paths), (wtype, path)
    assert wm.contains("/p", 1, WatcherType.Persistent) is None
    assert wm.remove("/r", 1, WatcherType.PersistentRecursive) is None


def test_remove_persistent_and_recursive_in_3_9() -> None:
    wm = WatchManager(zk38=False)
    wm.add_persistent("/a", 1, recursive=False)
    wm.add_persistent("/r", 1, recursive=True)
    assert wm.remove("/a", 1, WatcherType.Persistent)
    assert fired(wm, "/a", CHILDREN) == []
    assert fired(wm, "/a", CHANGED) == []
    assert not wm.remove("/r", 1, WatcherType.Persistent)
    assert wm.remove("/r", 1, WatcherType.PersistentRecursive)
    assert fired(wm, "/r/x", CREATED) == []
    assert wm.count == 0


def test_remove_data_takes_any_mode_in_3_8() -> None:
    wm = WatchManager()
    wm.add_persistent("/r", 1, recursive=True)
    assert wm.remove("/r", 1, WatcherType.Data)
    assert fired(wm, "/r/x", CREATED) == []  # gone from the data table
    assert fired(wm, "/r/x", DELETED) == [(1, ev(DELETED, "/r/x"))]  # child table still has it
    assert wm.remove("/r", 1, WatcherType.Children)
    assert wm.count == 0
    assert not wm.remove("/r", 1, WatcherType.Children)


def test_remove_any_takes_every_mode() -> None:
    wm = WatchManager()
    wm.add_persistent("/a", 1, recursive=True)
    wm.add_persistent("/a", 1, recursive=False)
    wm.add_watch("/a", 1, "child")
    wm.add_watch("/a", 2, "data")
    assert wm.remove("/a", 1, WatcherType.Any)
    assert not wm.remove("/a", 1, WatcherType.Any)
    assert fired(wm, "/a/b", CREATED) == []
    assert fired(wm, "/a", CHANGED) == [(2, ev(CHANGED, "/a"))]


def test_remove_watcher_drops_everything_of_that_connection() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    wm.add_watch("/b", 1, "child")
    wm.add_persistent("/", 1, recursive=True)
    wm.add_watch("/a", 2, "data")
    wm.remove_watcher(1)
    assert fired(wm, "/a", CHANGED) == [(2, ev(CHANGED, "/a"))]
    assert fired(wm, "/b", CHILDREN) == []
    assert fired(wm, "/z", CREATED) == []
    assert wm.count == 0


def test_count_and_summaries() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    wm.add_watch("/a", 2, "exist")
    wm.add_watch("/b", 2, "data")
    wm.add_watch("/a", 3, "child")
    assert wm.count == 4  # data table + child table, as zk_watch_count
    # wchs/wchc/wchp summarise the data table, as ZooKeeper does
    assert wm.summary() == WatchesSummary(connections=2, paths=2, total=3)
    assert wm.by_watcher() == {1: ("/a",), 2: ("/a", "/b")}
    assert wm.by_path() == {"/a": (1, 2), "/b": (2,)}
    assert wm.paths_of(3) == ("/a",)


def test_other_event_types_fire_nothing() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    assert wm.trigger("/a", EventType.DataWatchRemoved) == []
    assert wm.count == 1


def test_plain_int_event_types_fire_the_same() -> None:
    wm = WatchManager()
    wm.add_watch("/a", 1, "data")
    wm.add_watch("/", 2, "child")
    assert wm.trigger("/", int(CHILDREN)) == [(2, ev(CHILDREN, "/"))]
    assert wm.trigger("/a", int(DELETED)) == [(1, ev(DELETED, "/a"))]
