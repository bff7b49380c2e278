"""Protection: limits and throttles, the Content-Security-Policy, the origin check and backpressure."""
