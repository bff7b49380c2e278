"""Backends Django and Channels load by dotted path: the channel layers (and their mailbox),
the session engine and the PostgreSQL database backend.
"""
