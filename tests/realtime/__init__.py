"""Tests of chat/realtime/: the sockets and what follows them."""
