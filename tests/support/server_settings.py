"""The settings of the harness's daphne servers: production's (`project.settings`, read from the same
environment) with two changes. Passwords are hashed with one MD5 round: PBKDF2's million iterations
cost every sign-up, log-in and created account a fifth of a CPU second, and the browser tests make
hundreds of them on a two-core machine. Static files are collected into the test run's temporary
directory (`TESTS_STATIC_ROOT`), never the working tree's STATIC_ROOT, which in-process tests read
while they run. Nothing the live tests check depends on either; the deploy smoke test
(tests/test_deploy.py) runs `project.settings` unchanged."""

import os
from pathlib import Path

from project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_ROOT = Path(os.environ["TESTS_STATIC_ROOT"])
