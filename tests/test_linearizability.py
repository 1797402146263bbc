"""The chaos checker on hand-written histories: planted bugs are flagged, legal ones accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zkref.chaos.checker import CheckReport, check, check_file, render_text
from zkref.chaos.history import HistoryBuilder, HistoryError, read_history
from zkref.chaos.timeline import render_html

MS = 1_000_000  # times are nanoseconds


def verdicts(r: CheckReport) -> dict[str, bool | None]:
    return {v.property: v.valid for v in r.verdicts}


def lin(r: CheckReport) -> bool | None:
    return verdicts(r)["linearizable"]


def base() -> HistoryBuilder:
    """p0 creates /k = "a" (v0) at [0, 10] ms."""
    return HistoryBuilder({"servers": [1, 2, 3]}).add(0, "create", "/k", 0, 10 * MS, value="a")


# -- linearizable histories are accepted ----------------------------------------------------


def test_sequential_register_history_is_linearizable() -> None:
    h = (
        base()
        .add(0, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1)
        .add(1, "cas", "/k", 40 * MS, 50 * MS, value="c", version=1, out_version=2)
        .add(1, "cas", "/k", 60 * MS, 70 * MS, "fail", value="d", version=1, error="BadVersion")
        .add(0, "final-read", "/k", 80 * MS, 90 * MS, out_value="c", out_version=2)
        .build()
    )
    r = check(h)
    assert lin(r) is True
    assert verdicts(r)["no-lost-writes"] is True
    assert r.valid is True


def test_concurrent_writes_in_either_order() -> None:
    # Two overlapping writes; the final read shows the one that *started* first: legal.
    h = (
        base()
        .add(1, "write", "/k", 20 * MS, 60 * MS, value="x", out_version=2)
        .add(2, "write", "/k", 30 * MS, 50 * MS, value="y", out_version=1)
        .add(0, "final-read", "/k", 70 * MS, 80 * MS, out_value="x", out_version=2)
        .build()
    )
    assert lin(check(h)) is True


def test_info_write_that_took_effect_is_accepted() -> None:
    h = (
        base()
        .add(1, "write", "/k", 20 * MS, None, "info", value="lost?")
        .add(0, "final-read", "/k", 80 * MS, 90 * MS, out_value="lost?", out_version=1)
        .build()
    )
    r = check(h)
    assert lin(r) is True
    assert verdicts(r)["no-lost-writes"] is True


def test_info_write_that_did_not_take_effect_is_accepted() -> None:
    h = (
        base()
        .add(1, "write", "/k", 20 * MS, None, "info", value="never")
        .add(0, "final-read", "/k", 80 * MS, 90 * MS, out_value="a", out_version=0)
        .build()
    )
    assert check(h).valid is True


def test_info_cas_taking_effect_late_explains_a_later_read() -> None:
    # p1's CAS timed out at 30 ms but was applied after p2's read at 40-50 ms.
    h = (
        base()
        .add(1, "cas", "/k", 20 * MS, None, "info", value="late", version=0)
        .add(2, "final-read", "/k", 40 * MS, 50 * MS, out_value="a", out_version=0)
        .add(3, "final-read", "/k", 60 * MS, 70 * MS, out_value="late", out_version=1)
        .build()
    )
    assert lin(check(h)) is True


def test_plain_reads_are_not_held_to_linearizability() -> None:
    # A stale plain read (sequential consistency allows it) must not be flagged by default,
    # but is flagged when it followed a sync and --sync-reads is asked.
    b = base().add(0, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1)
    b.add(1, "sync", "/k", 40 * MS, 45 * MS)
    b.add(1, "read", "/k", 46 * MS, 50 * MS, out_value="a", out_version=0)
    h = b.build()
    assert lin(check(h)) is True
    r = check(h, sync_reads=True)
    assert lin(r) is False


def test_synced_read_may_linearize_from_the_sync_call() -> None:
    b = base().add(0, "write", "/k", 20 * MS, 60 * MS, value="b", out_version=1)
    b.add(1, "sync", "/k", 30 * MS, 35 * MS)
    b.add(1, "read", "/k", 36 * MS, 40 * MS, out_value="b", out_version=1)
    assert lin(check(b.build(), sync_reads=True)) is True


def test_delete_and_recreate_resets_version() -> None:
    h = (
        base()
        .add(0, "delete", "/k", 20 * MS, 30 * MS, version=0)
        .add(1, "create", "/k", 40 * MS, 50 * MS, value="again")
        .add(1, "cas", "/k", 60 * MS, 70 * MS, value="z", version=0, out_version=1)
        .add(0, "final-read", "/k", 80 * MS, 90 * MS, out_value="z", out_version=1)
        .build()
    )
    assert check(h).valid is True


# -- planted bugs are flagged ---------------------------------------------------------------


def test_lost_write_is_flagged_with_a_small_window(tmp_path: Path) -> None:
    # w(b) acknowledged, then a final read still shows "a" v0: the write was lost.
    h = (
        base()
        .add(1, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1)
        .add(2, "write", "/k", 25 * MS, 35 * MS, value="c", out_version=2)
        .add(0, "final-read", "/k", 100 * MS, 110 * MS, out_value="b", out_version=1)
        .build()
    )
    r = check(h)
    assert lin(r) is False
    assert verdicts(r)["no-lost-writes"] is False
    (viol,) = next(v for v in r.verdicts if v.property == "linearizable").violations
    assert viol.culprit is not None and viol.culprit.f == "final-read"
    # The window names the two writes and the read, not the create long before.
    assert sorted(o.f for o in viol.ops) == ["final-read", "write", "write"]
    text = render_text(r)
    assert "NOT linearizable" in text and "final-read(/k)" in text
    html = render_html(r, tmp_path / "t.html")
    content = html.read_text()
    assert "<svg" in content and "final-read" in content


def test_stale_cas_is_flagged() -> None:
    # Two CASes from version 0 both succeed: one of them compared against a stale version.
    h = (
        base()
        .add(1, "cas", "/k", 20 * MS, 30 * MS, value="b", version=0, out_version=1)
        .add(2, "cas", "/k", 40 * MS, 50 * MS, value="c", version=0, out_version=1)
        .build()
    )
    r = check(h)
    assert lin(r) is False
    v = next(v for v in r.verdicts if v.property == "linearizable")
    assert {o.f for o in v.violations[0].ops} == {"cas"}


def test_failed_cas_with_the_right_version_is_flagged() -> None:
    h = (
        base()
        .add(1, "cas", "/k", 20 * MS, 30 * MS, "fail", value="b", version=0, error="BadVersion")
        .build()
    )
    assert lin(check(h)) is False


def test_write_observed_before_it_began_is_flagged() -> None:
    h = (
        base()
        .add(1, "final-read", "/k", 20 * MS, 30 * MS, out_value="future", out_version=1)
        .add(2, "write", "/k", 40 * MS, 50 * MS, value="future", out_version=1)
        .build()
    )
    assert lin(check(h)) is False


def test_create_on_existing_node_acknowledged_is_flagged() -> None:
    h = base().add(1, "create", "/k", 20 * MS, 30 * MS, value="dup").build()
    assert lin(check(h)) is False


def test_lost_acknowledged_write_at_the_end() -> None:
    h = (
        base()
        .add(1, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1)
        .add(2, "write", "/k", 40 * MS, None, "info", value="maybe")
        .add(0, "final-read", "/k", 100 * MS, 110 * MS, out_value="a", out_version=0)
        .build()
    )
    r = check(h)
    assert verdicts(r)["no-lost-writes"] is False
    assert lin(r) is False
    v = next(v for v in r.verdicts if v.property == "no-lost-writes")
    assert "write(/k := 'b')" in v.violations[0].message


def test_lost_acknowledged_enqueue() -> None:
    b = HistoryBuilder({"queue": "/q"})
    b.add(0, "enqueue", "/q", 0, 10 * MS, value="x", name="/q/q-0000000000", zxid=5)
    b.add(1, "enqueue", "/q", 5 * MS, 15 * MS, value="y", name="/q/q-0000000001", zxid=6)
    b.add(2, "final-list", "/q", 50 * MS, 60 * MS, out_value=json.dumps(["q-0000000001"]))
    r = check(b.build())
    assert verdicts(r)["no-lost-writes"] is False
    assert verdicts(r)["sequential-names"] is True


def test_duplicate_sequential_name_is_flagged() -> None:
    b = HistoryBuilder()
    b.add(0, "enqueue", "/q", 0, 10 * MS, value="x", name="/q/q-0000000003", zxid=5)
    b.add(1, "enqueue", "/q", 5 * MS, 15 * MS, value="y", name="/q/q-0000000003", zxid=6)
    r = check(b.build())
    assert verdicts(r)["sequential-names"] is False


def test_sequential_names_out_of_zxid_order_are_flagged() -> None:
    b = HistoryBuilder()
    b.add(0, "enqueue", "/q", 0, 10 * MS, value="x", name="/q/q-0000000004", zxid=5)
    b.add(1, "enqueue", "/q", 0, 10 * MS, value="y", name="/q/q-0000000003", zxid=6)
    assert verdicts(check(b.build()))["sequential-names"] is False


def test_sequential_names_out_of_real_time_order_are_flagged() -> None:
    b = HistoryBuilder()
    b.add(0, "enqueue", "/q", 0, 10 * MS, value="x", name="/q/q-0000000007")
    b.add(1, "enqueue", "/q", 20 * MS, 30 * MS, value="y", name="/q/q-0000000006")
    assert verdicts(check(b.build()))["sequential-names"] is False


def test_sequential_names_in_order_pass() -> None:
    b = HistoryBuilder()
    for i in range(5):
        b.add(i % 2, "enqueue", "/q", i * 20 * MS, i * 20 * MS + 10 * MS, value="v",
              name=f"/q/q-{i:010d}", zxid=100 + i)  # fmt: skip
    assert verdicts(check(b.build()))["sequential-names"] is True


def test_fifo_violation_reply_zxid_goes_back() -> None:
    b = base()
    b.add(1, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1, seen_zxid=9, session="s1")
    b.add(1, "read", "/j", 40 * MS, 50 * MS, out_value=None, out_version=-1, seen_zxid=7,
          session="s1")  # fmt: skip
    r = check(b.build())
    assert verdicts(r)["session-order"] is False
    assert lin(r) is True


def test_read_your_writes_violation_is_flagged() -> None:
    b = base()
    b.add(1, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1, zxid=12, session="s1")
    b.add(1, "read", "/k", 40 * MS, 50 * MS, out_value="a", out_version=0, zxid=3, session="s1")
    r = check(b.build())
    assert verdicts(r)["session-order"] is False
    # Not a linearizability verdict: a plain read may be stale for *other* sessions.
    assert lin(r) is True


def test_session_order_passes_on_monotone_zxids() -> None:
    b = base()
    b.add(1, "write", "/k", 20 * MS, 30 * MS, value="b", out_version=1, zxid=12, seen_zxid=12,
          session="s1")  # fmt: skip
    b.add(1, "read", "/k", 40 * MS, 50 * MS, out_value="b", out_version=1, zxid=12, seen_zxid=14,
          session="s1")  # fmt: skip
    assert verdicts(check(b.build()))["session-order"] is True


# -- file format ----------------------------------------------------------------------------


def test_roundtrip_through_ndjson(tmp_path: Path) -> None:
    path = (
        base()
        .add(1, "write", "/k", 20 * MS, None, "info", value="b", error="ConnectionLoss")
        .write(tmp_path / "h.ndjson")
    )
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "header"
    first = json.loads(lines[1])
    assert set(first) >= {"index", "process", "type", "f", "path", "value", "version", "time"}
    h = read_history(path)
    assert [e.type for e in h.events] == ["invoke", "ok", "invoke"]
    r = check_file(path)
    assert r.valid is True
    assert verdicts(r)["no-lost-writes"] is None  # nothing final to judge durability on


def test_torn_last_line_is_tolerated(tmp_path: Path) -> None:
    path = base().write(tmp_path / "h.ndjson")
    with open(path, "a") as fh:
        fh.write('{"index": 99, "proc')
    assert len(read_history(path).events) == 2


def test_two_outstanding_ops_in_one_process_is_malformed() -> None:
    b = HistoryBuilder()
    b.add(0, "write", "/k", 0, None, "info", value="a")
    b.add(0, "write", "/k", 5, 10, value="b", out_version=1)
    with pytest.raises(HistoryError):
        check(b.build())


def test_merge_keeps_each_process_order_on_equal_times(tmp_path: Path) -> None:
    from zkref.chaos.history import Event, EventType, merge_files

    def ev(p: int, t: EventType, f: str, time_ns: int) -> str:
        value = "a" if f == "create" else None
        return Event(
            index=-1, process=p, type=t, f=f, path="/k", time=time_ns, value=value
        ).to_json()

    # Same nanosecond for p0's completion and its next invoke, and for p1's invoke.
    w0 = [ev(0, "invoke", "create", 1), ev(0, "ok", "create", 5)]
    w0 += [ev(0, "invoke", "sync", 5), ev(0, "ok", "sync", 6)]
    (tmp_path / "w0.ndjson").write_text("\n".join(w0) + "\n")
    (tmp_path / "w1.ndjson").write_text(ev(1, "invoke", "sync", 5) + "\n" + ev(1, "ok", "sync", 5))
    out = tmp_path / "h.ndjson"
    n = merge_files([tmp_path / "w0.ndjson", tmp_path / "w1.ndjson"], out, {"source": "test"})
    assert n == 6
    h = read_history(out)
    assert [e.index for e in h.events] == list(range(6))
    assert h.header["source"] == "test"
    p0 = [(e.type, e.f) for e in h.events if e.process == 0]
    assert p0 == [("invoke", "create"), ("ok", "create"), ("invoke", "sync"), ("ok", "sync")]
    assert check(h).valid is True  # pairs cleanly: no "two outstanding ops"
