"""Tests of chat/accounts/."""
