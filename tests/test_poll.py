"""The tests' one polling helper (tests/support/poll.py): it asks soon, then less often, and says what
it waited for when the deadline passes."""

from __future__ import annotations

import itertools

import pytest

from tests.support import poll


def test_pauses_start_short_and_grow_to_the_cap() -> None:
    pauses = list(itertools.islice(poll._pauses(), 12))
    assert pauses[0] == poll.FIRST_S
    assert all(b >= a for a, b in itertools.pairwise(pauses))
    assert pauses[-1] == poll.EVERY_S and max(pauses) == poll.EVERY_S


async def test_until_returns_the_first_truthy_answer_of_sync_or_async_questions() -> None:
    answers = iter([None, 0, "", "ready"])
    assert await poll.until(lambda: next(answers), 5) == "ready"

    async def asked() -> list[int]:
        return [1]

    assert await poll.until(asked, 5) == [1]


async def test_until_names_what_it_waited_for_when_the_deadline_passes() -> None:
    with pytest.raises(AssertionError, match=r"the moon: not within 0\.02 s"):
        await poll.until(lambda: False, 0.02, "the moon")
    with pytest.raises(AssertionError, match=r"the sun: not within 0\.02 s"):
        poll.until_sync(lambda: None, 0.02, "the sun")
