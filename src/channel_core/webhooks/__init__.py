"""Receiving store webhooks: verify a delivery, record its event once, and have the named orders synced soon.

:mod:`channel_core.webhooks.receiver` is the ASGI application (Starlette) a host mounts in its own web app;
:mod:`channel_core.webhooks.local` applies events on one SQLite database (``channel webhooks serve``).
Polling stays the source of truth for completeness: a lost delivery is caught by the next run.
"""
