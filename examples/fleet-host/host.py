"""A host application running the fleet: register a store, queue a shipment, run a worker until the queue is empty.

The code ``docs/scaling.md`` shows. ``tests/fleet/test_host_example.py`` runs this file against the Oxatis
sandbox: ``CHANNEL_DB`` names the PostgreSQL database, ``MERCHANT_42_TOKEN`` and ``OXATIS_BASE_URL`` the store,
``ORDER_ID`` the order to ship.
"""

import os
from datetime import timedelta
from typing import Any

from channel_core import Channels, Shipment
from channel_core.fleet.engine import enqueue_shipment, make_app, prepare_database
from channel_core.fleet.registry import RegisteredStore, StoreRegistry
from channel_core.hooktypes import ChannelInfo
from channel_core.sync.postgres import PostgresStore

DSN = os.environ["CHANNEL_DB"]  # e.g. postgresql://app@db/channel
my_vault = {"merchants/42": {"oxatis_token": os.environ["MERCHANT_42_TOKEN"]}}  # stands in for your secret store

prepare_database(DSN)  # procrastinate's schema and the channel tables, once
oxatis = Channels.discover()["oxatis"]
with PostgresStore(DSN) as db:
    StoreRegistry(db, schemes=("vault",)).add(
        "merchant-42",
        oxatis.info(),
        settings={"store_timezone": "Europe/Paris", "base_url": os.environ["OXATIS_BASE_URL"]},
        credentials="vault:merchants/42",
        every=timedelta(minutes=10),
        requests_per_second=5,
        replace=True,
    )


def from_vault(store: RegisteredStore, info: ChannelInfo) -> dict[str, Any]:
    """Runs inside each job; nothing it returns is stored."""
    return {"token": my_vault[store.credentials.removeprefix("vault:")]["oxatis_token"]}


app = make_app(DSN, credentials=from_vault)
with app.open():
    shipment = Shipment(order_id=os.environ["ORDER_ID"], tracking_number="6A123", carrier="Colissimo")
    enqueue_shipment(app, "merchant-42", shipment)
app.run_worker(concurrency=4, wait=False)  # a long-running host: wait=True, or `procrastinate --app ... worker`
