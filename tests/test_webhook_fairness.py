"""Fair scheduling of due deliveries (issue 13 §7): lanes per owner and origin, turns, caps, the floor
every owner keeps when the shared slots are taken. The end-to-end case (8 hanging receivers on
127.0.0.1) is in tests/test_isolation.py."""

from __future__ import annotations

from gateway.webhooks.fairness import FairQueue, origin_of


def test_origin_is_scheme_host_port_not_the_url_string() -> None:
    """Paths, queries, userinfo and host case do not make a new origin; a port or a scheme does."""
    base = origin_of("https://hooks.example.com/a")
    for same in (
        "https://hooks.example.com/b?x=1",
        "https://HOOKS.example.com:443/c",
        "https://user:pw@hooks.example.com/d#f",
    ):
        assert origin_of(same) == base, same
    assert origin_of("https://hooks.example.com:8443/a") != base
    assert origin_of("http://hooks.example.com/a") == ("http", "hooks.example.com", 80)
    assert origin_of("http://[::1]:99999/") == ("", "http://[::1]:99999/", 0)  # unparseable: its own


def test_one_owner_varying_paths_stays_within_one_origin_cap() -> None:
    """20 URLs on one host are one lane: at most origin_limit of them start."""
    q = FairQueue(limit=64, origin_limit=8)
    for i in range(20):
        q.push(q.lane(1, f"http://slow.test/hook/{i}?n={i}"), 0.0, i)
    assert len(q.choose(now=1.0)) == 8
    assert q.choose(now=1.0) == []


def _mixed_queue() -> FairQueue:
    q = FairQueue(limit=6, origin_limit=2)
    for i in range(10):
        q.push(q.lane(1, "http://a.test/"), 1.0, 100 + i)
    for i in range(3):
        q.push(q.lane(1, "http://b.test/"), 1.5, 200 + i)
    q.push(q.lane(2, "http://c.test/"), 2.0, 300)
    q.push(q.lane(None, "http://op.test/"), 3.0, 400)
    return q


def test_owners_take_turns_oldest_first_and_deterministically() -> None:
    """Each round gives each owner with due work one attempt, the owner with the oldest due row first;
    an owner's origins take turns too; the same queue always gives the same order."""
    chosen = [row_id for row_id, _ in _mixed_queue().choose(now=5.0)]
    assert chosen == [100, 300, 400, 200, 101, 201]
    assert [row_id for row_id, _ in _mixed_queue().choose(now=5.0)] == chosen


def test_an_owner_holding_every_shared_slot_leaves_others_their_floor() -> None:
    """Owner 1 fills WEBHOOK_CONCURRENCY across many origins; owner 2 may still start origin_limit
    attempts (its floor); owner 1 gets no more; nobody goes past twice the limit."""
    q = FairQueue(limit=4, origin_limit=2)
    for origin in range(4):
        for i in range(5):
            q.push(q.lane(1, f"http://r{origin}.test/"), 0.0, origin * 10 + i)
    assert len(q.choose(now=1.0)) == 4 and q.in_flight == 4
    for i in range(5):
        q.push(q.lane(2, "http://two.test/"), 0.0, 100 + i)
    late = q.choose(now=1.0)
    assert [row_id for row_id, _ in late] == [100, 101]  # owner 2's floor; nothing more for owner 1
    assert q.in_flight == 6
    for owner in (3, 4, 5):
        q.push(q.lane(owner, "http://x.test/"), 0.0, 1000 + owner)
        q.push(q.lane(owner, "http://x.test/"), 0.0, 2000 + owner)
    assert len(q.choose(now=1.0)) == 2 and q.in_flight == 8  # the ceiling: 2 × limit


def test_a_finished_attempt_frees_its_slot() -> None:
    """done() gives the lane's and the owner's slot back: the next row of that lane can start."""
    q = FairQueue(limit=64, origin_limit=1)
    lane = q.lane(1, "http://a.test/")
    q.push(lane, 0.0, 1)
    q.push(lane, 0.0, 2)
    assert q.choose(now=1.0) == [(1, lane)]
    assert q.choose(now=1.0) == [] and q.next_due(now=1.0) is None  # full lane: wait for a wake
    q.done(lane)
    assert q.in_flight == 0 and q.busy(lane) == 0
    assert q.choose(now=1.0) == [(2, lane)]


def test_next_due_is_the_earliest_row_that_could_start() -> None:
    """Seconds to the earliest due row that could start; None when every lane with rows is blocked (a
    finished attempt wakes the dispatcher), so a full dispatcher never spins."""
    q = FairQueue(limit=1, origin_limit=1)
    assert q.next_due(now=0.0) is None
    q.push(q.lane(1, "http://a.test/"), 5.0, 1)
    assert q.next_due(now=2.0) == 3.0
    q.push(q.lane(1, "http://b.test/"), 0.0, 2)
    assert [r for r, _ in q.choose(now=2.0)] == [2]
    assert q.next_due(now=10.0) is None  # owner 1 holds the only slot (and its floor): nothing can start
    q.push(q.lane(2, "http://c.test/"), 1.0, 3)
    assert q.next_due(now=10.0) == 0.0  # owner 2's floor: it can start now
