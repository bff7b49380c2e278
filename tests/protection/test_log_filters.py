import logging

from chat.protection.log_filters import OncePerMinute


def record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("channels_redis.pubsub", logging.ERROR, __file__, 1, msg, None, None)


def test_a_repeated_record_passes_once_a_minute(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("chat.protection.log_filters.time.monotonic", lambda: clock[0])
    once = OncePerMinute()

    passed = [once.filter(record("Unexpected exception in receive task")) for _ in range(30)]
    other = once.filter(record("something else"))
    clock[0] += 61
    later = once.filter(record("Unexpected exception in receive task"))

    assert passed == [True] + [False] * 29
    assert other and later
