"""Tests of chat/backends/."""
