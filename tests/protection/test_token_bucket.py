from chat.protection.token_bucket import TokenBucket


def test_a_burst_then_one_per_interval():
    now = [0.0]
    bucket = TokenBucket(burst=3, rate=2.0, clock=lambda: now[0])

    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back at 2 per second
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 60  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3
