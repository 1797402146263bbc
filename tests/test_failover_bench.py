"""The fail-over benchmark (`python -m zkref.chaos.failover`) measures what it says: a real
kill -9 of the leader and a different member leading afterwards. Times are printed, not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkref.chaos.failover import _settled, main, make_ensemble, measure


@pytest.mark.slow
def test_one_failover_on_zkref_kills_the_leader_and_another_leads(tmp_path: Path) -> None:
    with make_ensemble("zkref", 3, tmp_path, 200) as ens:
        ens.start()
        [r] = measure(ens, 1)
        assert r.new != r.old and r.seconds > 0
        # the old leader was restarted and is a follower again; every member answers
        assert _settled(ens, ens.sids) == r.new
        assert ens.mode(r.old) == "follower"
        starts = {s: ens._members[s].starts for s in ens.sids}
        assert starts[r.old] == 2 and all(n == 1 for s, n in starts.items() if s != r.old)


@pytest.mark.parametrize("args", [["--size", "2"], ["--size", "1"], ["--runs", "0"]])
def test_cli_refuses_what_cannot_fail_over(args: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
