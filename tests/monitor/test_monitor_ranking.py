"""The ranking and join/leave hysteresis decision (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamscout.monitor.ranking import (
    LEAVE_CLIPPING,
    LEAVE_OFFLINE,
    LEAVE_RANK,
    LiveStream,
    Refusal,
    decide,
    enough_ranked,
    is_refused,
    rank_streams,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
WEEK = timedelta(days=7)


def streams(*ids: int) -> list[LiveStream]:
    """Streams in the given order with strictly falling viewer counts."""
    return [LiveStream(i, f"ch{i}", 10_000 - n) for n, i in enumerate(ids)]


def run(live, joined=(), alive=None, refusals=None, join_rank=5, leave_rank=10, now=NOW):
    joined = set(joined)
    return decide(
        live,
        joined=joined,
        alive=joined if alive is None else set(alive),
        refusals=refusals or {},
        now=now,
        join_rank=join_rank,
        leave_rank=leave_rank,
        recheck_after=WEEK,
    )


def ids(to_join):
    return [s.broadcaster_id for s in to_join]


def test_empty_start_joins_top_five_in_rank_order():
    d = run(streams(*range(1, 21)))
    assert ids(d.to_join) == [1, 2, 3, 4, 5]
    assert d.to_leave == {}
    assert d.ranks[1] == 1 and d.ranks[20] == 20


def test_ranks_follow_viewers_not_api_order():
    live = [LiveStream(1, "a", 10), LiveStream(2, "b", 30), LiveStream(3, "c", 20)]
    ranks, ordered = rank_streams(live, {}, NOW)
    assert ranks == {2: 1, 3: 2, 1: 3}
    assert [s.broadcaster_id for s in ordered] == [2, 3, 1]


def test_ties_keep_api_order_deterministically():
    live = [LiveStream(7, "x", 100), LiveStream(3, "y", 100), LiveStream(9, "z", 100)]
    assert rank_streams(live, {}, NOW)[0] == {7: 1, 3: 2, 9: 3}
    # a tie across the join boundary: the first listed takes the last slot
    live = streams(1, 2, 3, 4) + [LiveStream(50, "t1", 1), LiveStream(51, "t2", 1)]
    d = run(live)
    assert ids(d.to_join) == [1, 2, 3, 4, 50]


def test_overlapping_pages_count_a_broadcaster_once_at_its_better_rank():
    page1 = [LiveStream(1, "a", 900), LiveStream(2, "b", 800), LiveStream(3, "c", 700)]
    page2 = [LiveStream(2, "b", 650), LiveStream(4, "d", 600), LiveStream(5, "e", 500)]
    ranks, ordered = rank_streams(page1 + page2, {}, NOW)
    assert ranks[2] == 2
    assert len(ordered) == 5


def test_hysteresis_keeps_channels_between_join_and_leave_rank():
    # joined 1..5, then five newcomers push them to ranks 6..10: nobody leaves
    d = run(streams(11, 12, 13, 14, 15, 1, 2, 3, 4, 5), joined={1, 2, 3, 4, 5})
    assert d.to_leave == {}
    assert ids(d.to_join) == [11, 12, 13, 14, 15]


def test_more_than_five_new_entrants_at_once_joins_only_the_top_five_and_leaves_by_rank():
    joined = {1, 2, 3, 4, 5}
    live = streams(21, 22, 23, 24, 25, 26, 27, 28, 1, 2, 3, 4, 5)
    d = run(live, joined=joined)
    assert ids(d.to_join) == [21, 22, 23, 24, 25]  # 26..28 are ranks 6..8: not joined
    assert d.to_leave == {3: LEAVE_RANK, 4: LEAVE_RANK, 5: LEAVE_RANK}  # ranks 11..13
    assert d.ranks[2] == 10


def test_flapping_at_the_join_boundary_joins_once_and_never_leaves():
    joined: set[int] = set()
    orders = [streams(1, 2, 3, 4, 5, 6), streams(1, 2, 3, 4, 6, 5)] * 5
    joins = []
    for live in orders:
        d = run(live, joined=joined)
        assert d.to_leave == {}
        joins += ids(d.to_join)
        joined |= set(ids(d.to_join))
    assert joins == [1, 2, 3, 4, 5, 6]  # 6 joined on its first time in the top 5, once


def test_flapping_at_the_leave_boundary_leaves_once():
    joined = {10}
    at_10 = streams(*range(1, 10), 10, 11)
    at_11 = streams(*range(1, 10), 11, 10)
    assert run(at_10, joined=joined).to_leave == {}
    assert run(at_11, joined=joined).to_leave == {10: LEAVE_RANK}
    # once left it must re-enter the top 5 to be joined again
    assert ids(run(at_10, joined=set()).to_join) == [1, 2, 3, 4, 5]


def test_offline_channel_is_kept_while_its_key_lives_and_left_when_expired():
    live = streams(2, 3, 4, 5, 6)
    kept = run(live, joined={1, 2}, alive={1, 2})
    assert 1 not in kept.to_leave
    assert 1 not in kept.ranks
    gone = run(live, joined={1, 2}, alive={2})
    assert gone.to_leave == {1: LEAVE_OFFLINE}


def test_channel_back_online_in_top_five_is_joined_again():
    d1 = run(streams(2, 3, 4, 5, 6), joined={1, 2, 3, 4, 5}, alive={2, 3, 4, 5})
    assert d1.to_leave == {1: LEAVE_OFFLINE}
    assert ids(d1.to_join) == [6]
    d2 = run(streams(1, 2, 3, 4, 5, 6), joined={2, 3, 4, 5, 6})
    assert ids(d2.to_join) == [1]
    assert d2.to_leave == {}


def test_channel_back_online_outside_top_five_waits():
    d = run(streams(2, 3, 4, 5, 6, 1), joined={2, 3, 4, 5, 6})
    assert d.to_join == [] and d.ranks[1] == 6


def test_clipping_refused_channel_is_skipped_and_the_next_takes_its_slot():
    refusals = {3: Refusal(NOW - timedelta(days=1))}
    d = run(streams(1, 2, 3, 4, 5, 6, 7), refusals=refusals)
    assert ids(d.to_join) == [1, 2, 4, 5, 6]
    assert 3 not in d.ranks and d.ranks[6] == 5


def test_clipping_refused_while_joined_leaves():
    refusals = {3: Refusal(NOW - timedelta(minutes=1))}
    d = run(streams(1, 2, 3, 4, 5, 6), joined={1, 2, 3, 4, 5}, refusals=refusals)
    assert d.to_leave == {3: LEAVE_CLIPPING}
    assert ids(d.to_join) == [6]


def test_refused_channel_is_rechecked_after_the_period():
    live = streams(1, 2, 3, 4, 5)
    just_before = {3: Refusal(NOW - WEEK + timedelta(seconds=1))}
    exactly = {3: Refusal(NOW - WEEK)}
    assert 3 not in run(live, refusals=just_before).ranks
    assert ids(run(live, refusals=exactly).to_join) == [1, 2, 3, 4, 5]


def test_refusal_without_time_is_never_rechecked():
    assert is_refused(Refusal(None), NOW, WEEK)
    assert not is_refused(None, NOW, WEEK)
    assert 3 not in run(streams(1, 2, 3), refusals={3: Refusal(None)}).ranks


def test_fewer_live_streams_than_slots():
    d = run(streams(1, 2))
    assert ids(d.to_join) == [1, 2]
    assert run([], joined={1}, alive=set()).to_leave == {1: LEAVE_OFFLINE}


def test_enough_ranked_counts_only_clippable_streams():
    refusals = {2: Refusal(NOW)}
    assert not enough_ranked(streams(1, 2, 3), refusals, NOW, leave_rank=3)
    assert enough_ranked(streams(1, 2, 3, 4), refusals, NOW, leave_rank=3)


def test_join_rank_above_leave_rank_is_rejected():
    with pytest.raises(ValueError, match="join_rank"):
        run(streams(1), join_rank=11, leave_rank=10)


@given(
    order=st.permutations(list(range(1, 16))),
    joined=st.sets(st.integers(1, 20), max_size=10),
    alive=st.sets(st.integers(1, 20)),
)
def test_invariants(order, joined, alive):
    live = streams(*order)
    d = run(live, joined=joined, alive=alive)
    joined_after = (joined - set(d.to_leave)) | set(ids(d.to_join))
    # everyone in the top 5 is watched afterwards; nobody ranked 6..10 is ever left
    assert {b for b, r in d.ranks.items() if r <= 5} <= joined_after
    assert not any(d.ranks.get(b, 99) <= 10 for b in d.to_leave)
    # joins are new and ranked <= 5; leaves are joined channels
    assert all(d.ranks[s.broadcaster_id] <= 5 and s.broadcaster_id not in joined for s in d.to_join)
    assert set(d.to_leave) <= joined
    # at most leave_rank channels plus the grace-period ones remain watched
    assert len(joined_after - set(d.ranks)) <= len(joined & alive)
