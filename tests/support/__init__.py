"""Shared test helpers: live servers (daphne, redis-server, Chromium) and the Procfile's command."""
