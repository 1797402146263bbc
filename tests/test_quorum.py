"""zkref.core.quorum: ZooKeeper's QuorumMaj and QuorumHierarchical rules, case by case."""

from __future__ import annotations

import pytest

from zkref.core.quorum import QuorumHierarchical, QuorumMaj, java_half, weighted


def test_java_half_truncates_toward_zero() -> None:
    assert [java_half(x) for x in (-5, -4, -3, -1, 0, 1, 3, 4, 5)] == [-2, -2, -1, 0, 0, 0, 1, 2, 2]


@pytest.mark.parametrize(("n", "smallest"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_majority_needs_more_than_half(n: int, smallest: int) -> None:
    q = QuorumMaj(frozenset(range(1, n + 1)))
    assert q.contains_quorum(range(1, smallest + 1))
    assert not q.contains_quorum(range(1, smallest))


def test_majority_ignores_ids_that_are_not_voters() -> None:
    q = QuorumMaj(frozenset({1, 2, 3}))  # 4 and 5 are observers (or unknown)
    assert not q.contains_quorum({1, 4, 5})
    assert q.contains_quorum({1, 3, 4})


def docs_example() -> QuorumHierarchical:
    """zookeeperHierarchicalQuorums.md: three groups of three, every weight 1."""
    return QuorumHierarchical.of(
        {1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {s: 1 for s in range(1, 10)}
    )


def test_hierarchical_docs_example_two_servers_from_each_of_two_groups() -> None:
    q = docs_example()
    assert q.num_groups == 3
    assert q.contains_quorum({1, 2, 4, 5})
    assert not q.contains_quorum({1, 2, 3, 4})  # one group won outright, one not
    assert not q.contains_quorum({1, 4, 7, 2})  # one group won, two with one vote each
    assert q.contains_quorum({1, 2, 3, 4, 5, 6})
    assert not q.contains_quorum(set())


def test_zero_weight_group_is_left_out_of_the_group_count() -> None:
    # Group 3's servers all weigh 0: numGroups is 2, so both remaining groups must be won.
    weights = {s: 1 for s in range(1, 7)} | {7: 0, 8: 0, 9: 0}
    q = QuorumHierarchical.of({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, weights)
    assert q.num_groups == 2
    assert not q.contains_quorum({1, 2, 7, 8, 9})
    assert q.contains_quorum({1, 2, 4, 5})


def test_group_weight_uses_weights_and_a_missing_weight_is_one() -> None:
    q = QuorumHierarchical.of({1: [1, 2, 3]}, {1: 3})  # 2 and 3 default to 1: total 5
    assert q.group_weight(1) == 5
    assert q.contains_quorum({1})  # 3 > 5 / 2
    assert not q.contains_quorum({2, 3})  # 2 > 2 fails


def test_weighted_is_one_group() -> None:
    q = weighted({1: 2, 2: 1, 3: 1, 4: 1})  # total 5
    assert q.groups == ((1, frozenset({1, 2, 3, 4})),)
    assert q.contains_quorum({1, 2})
    assert not q.contains_quorum({2, 3})
    assert not q.contains_quorum({1})  # 2 > 2 fails


def test_a_group_counts_as_won_only_if_the_set_meets_it() -> None:
    # ZooKeeper adds weights only for the groups it meets: group 2 weighs -2 (half is -1), so a
    # set meeting it with weight 0 >= -1 wins it, but a set not meeting it does not.
    q = QuorumHierarchical.of({1: [1, 2, 3], 2: [4, 5]}, {1: 1, 2: 1, 3: 1, 4: -2, 5: 0})
    assert q.num_groups == 2
    assert not q.contains_quorum({1, 2})  # wins group 1 only: 1 > 2 // 2 fails
    assert q.contains_quorum({1, 2, 5})  # 5 adds nothing but wins group 2 (0 > -1)


def test_observers_in_a_group_raise_its_weight_but_never_vote() -> None:
    q = QuorumHierarchical.of({1: [1, 2, 3]}, {3: 1}, voters={1, 2})
    assert q.group_weight(1) == 3
    assert q.contains_quorum({1, 2})
    assert not q.contains_quorum({1, 3})  # 3 is not a voter: only 1 counts


def test_negative_weights_are_evaluated_as_zookeeper_does() -> None:
    # ZooKeeper 3.8 parses weight.N with Long.parseLong and accepts this: {1} and {2} are both
    # quorums (2 > 3 / 2) and share no server. The core evaluates; the z3 check refuses.
    q = weighted({1: 2, 2: 2, 3: -1})
    assert q.contains_quorum({1})
    assert q.contains_quorum({2})
