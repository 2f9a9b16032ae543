"""What the pool learns from server closes: only from agreeing, separate closes, and not forever."""

from __future__ import annotations

from aiofasthttp.policy.learning import TTL, ServerMemory


def test_one_close_teaches_nothing_two_agreeing_closes_do() -> None:
    m = ServerMemory()
    m.observe(100.0, 5.0, 3)
    assert m.idle_timeout(100.0) is None
    m.observe(107.0, 5.3, 1)
    assert m.idle_timeout(107.0) == 5.0


def test_a_burst_of_closes_is_one_event() -> None:
    m = ServerMemory()
    # A restart closes every idle connection within a few milliseconds.
    for i, idle in enumerate([0.9, 1.0, 1.05, 3.0, 3.1]):
        m.observe(200.0 + i * 0.001, idle, 7)
    assert m.idle_timeout(200.01) is None
    for i in range(4):
        m.observe(300.0 + i * 0.001, 0.01, 1)  # closed right after a response, together
    assert m.max_requests(300.01) is None


def test_disagreeing_closes_teach_nothing() -> None:
    m = ServerMemory()
    m.observe(10.0, 1.0, 2)
    m.observe(20.0, 4.0, 2)
    assert m.idle_timeout(20.0) is None


def test_request_limit_needs_two_agreeing_closes() -> None:
    m = ServerMemory()
    m.observe(10.0, 0.001, 50)
    assert m.max_requests(10.0) is None
    m.observe(11.0, 0.002, 49)
    assert m.max_requests(11.0) is None
    m.observe(12.0, 0.001, 50)
    assert m.max_requests(12.0) == 50


def test_a_learned_limit_is_forgotten_unless_confirmed() -> None:
    m = ServerMemory()
    m.observe(0.0, 2.0, 1)
    m.observe(5.0, 2.1, 1)
    assert m.idle_timeout(5.0 + TTL - 1) == 2.0
    assert m.idle_timeout(5.0 + TTL + 1) is None


def test_a_limit_is_void_while_a_connection_has_outlived_it() -> None:
    m = ServerMemory()
    m.survived(0.0, 30, 0.0)  # one connection has answered 30 requests
    m.observe(1.0, 0.001, 1)  # two dropped requests after one response each...
    m.observe(2.0, 0.001, 1)
    assert m.max_requests(2.0) is None  # ...are not a limit of one request
    m.survived(3.0, 2, 4.0)  # a connection answered after 4 s idle
    m.observe(4.0, 2.0, 5)
    m.observe(5.0, 2.1, 5)
    assert m.idle_timeout(5.0) is None  # so 2 s is not the server's idle timeout
    assert m.idle_timeout(3.0 + TTL + 10) is None
    m.observe(3.0 + TTL + 20, 2.0, 5)
    m.observe(3.0 + TTL + 30, 2.1, 5)
    assert m.idle_timeout(3.0 + TTL + 30) == 2.0  # the old counter-evidence has expired


def test_has_news_says_whether_survived_would_record_anything() -> None:
    # The pool asks has_news (inline) before every survived(): a False must mean that
    # survived() would have changed nothing, or evidence against a limit is lost.
    m = ServerMemory()
    assert m.has_news(0.0, 1, 0.0)  # nothing recorded yet
    m.survived(0.0, 3, 0.5)
    assert not m.has_news(1.0, 3, 0.5)  # neither record beaten
    assert not m.has_news(1.0, 2, 0.1)
    assert m.has_news(1.0, 4, 0.1)  # more requests served
    assert m.has_news(1.0, 1, 0.6)  # a longer idle spell survived
    assert m.has_news(TTL + 0.5, 1, 0.1)  # the records lapse: any newer one replaces them
    m.survived(TTL + 0.5, 1, 0.1)
    assert (m.served_record, m.idle_record) == (1, 0.1)
    assert m.longest_idle_survived(TTL + 0.5) == 0.1


def test_a_record_not_beaten_still_lapses_after_ttl() -> None:
    m = ServerMemory()
    m.survived(0.0, 10, 2.0)
    m.survived(30.0, 12, 1.0)  # beats the request record only
    assert m.longest_idle_survived(30.0) == 2.0
    assert m.has_news(TTL + 1, 1, 0.0)  # the idle record (from 0.0) is due
    m.survived(TTL + 1, 1, 0.0)
    assert m.longest_idle_survived(TTL + 1) == 0.0  # replaced by the newer, shorter one
    assert m.served_record == 12  # 29 s old: kept


def test_no_close_is_expected_within_answered_idle_spells_and_below_closed_counts() -> None:
    m = ServerMemory()
    assert not m.expects_no_close(0.0, 0, 0.0)  # nothing answered yet
    m.survived(1.0, 10, 3.0)
    assert m.expects_no_close(2.0, 9, 2.4)
    assert m.expects_no_close(2.0, 500, 1.0)  # no close seen after any count: no limit known
    assert not m.expects_no_close(2.0, 3, 2.5)  # within 20% of the longest answered after
    m.observe(2.0, 2.5, 4)  # the server closed one after 2.5 s idle (a race, or a restart)
    assert m.expects_no_close(2.5, 3, 2.0) and not m.expects_no_close(2.5, 3, 2.1)  # 20% short
    m.observe(3.0, 0.001, 6)  # and one right after its 6th response
    assert m.expects_no_close(3.5, 5, 1.0) and not m.expects_no_close(3.5, 6, 1.0)
    assert not m.expects_no_close(1.0 + TTL + 1, 1, 0.0)  # the answers lapse
