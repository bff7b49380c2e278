"""Accounts: sign-up, log-in, settings, the viewer's stylesheet and the reader's time zone."""
