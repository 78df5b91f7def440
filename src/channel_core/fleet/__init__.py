"""Many stores, many workers: the same sync on PostgreSQL and a task engine.

* :mod:`~channel_core.fleet.registry` -- the stores a host syncs, when each is due, which are parked;
* :mod:`~channel_core.fleet.credentials` -- the registry keeps a reference, the host resolves secrets;
* :mod:`~channel_core.fleet.budget` -- a rate budget per account shared by every worker;
* :mod:`~channel_core.fleet.engine` -- procrastinate tasks: schedule, sync a store, notify a shipment.

Needs ``pip install 'channel-integrations[engine]'`` (psycopg and procrastinate).
"""
