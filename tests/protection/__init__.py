"""Tests of chat/protection/."""
