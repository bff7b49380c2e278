"""Browser tests: a real Chromium against a live daphne (tests/support/live.py)."""
