"""The one-second answer cache, without a server."""

import doctest
import threading

import pytest

from streamscout.api import cache
from streamscout.api.cache import TtlCache

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_module_example():
    assert doctest.testmod(cache).failed == 0


def test_entries_expire_after_ttl():
    clock = FakeClock()
    answers = TtlCache(ttl=1.0, clock=clock)
    answers.put("q", b"old")
    clock.now += 0.999
    assert answers.get("q") == b"old"
    clock.now += 0.001
    assert answers.get("q") is None
    answers.put("q", b"new")
    assert answers.get("q") == b"new"


def test_oldest_stored_entries_are_evicted_first():
    answers = TtlCache(ttl=10.0, max_entries=3, clock=FakeClock())
    for key in "abcd":
        answers.put(key, key.encode())
    answers.put("b", b"B")  # storing again makes it the newest
    answers.put("e", b"e")
    assert [answers.get(k) for k in "abcde"] == [None, b"B", None, b"d", b"e"]


def test_zero_ttl_turns_it_off():
    answers = TtlCache(ttl=0.0)
    answers.put("q", b"x")
    assert answers.get("q") is None


def test_concurrent_use_keeps_the_bound():
    answers = TtlCache(ttl=10.0, max_entries=50)

    def hammer(offset: int) -> None:
        for i in range(2000):
            answers.put(str(offset + i % 300), b"v")
            answers.get(str(i % 300))

    threads = [threading.Thread(target=hammer, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers._entries) == 50
