"""The ``channel`` command runs Shopify end to end: connect, import, orders, ship (a package), sync, demo."""

from __future__ import annotations

import json
from pathlib import Path

from channel_core.cli.context import EXIT_CONFIG, EXIT_OK, EXIT_STOPPED
from tests.cli.test_cli import run
from tests.shopify.conftest import DOMAIN, MakeSandbox


def _env(server_url: str, client_id: str, secret: str) -> dict[str, str]:
    return {
        "SHOPIFY_SHOP": DOMAIN,
        "SHOPIFY_BASE_URL": f"{server_url}/shops/{DOMAIN}",
        "SHOPIFY_CLIENT_ID": client_id,
        "SHOPIFY_CLIENT_SECRET": secret,
    }


def test_connect_import_orders_and_ship_a_package(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    server = make_sandbox(orders=15)
    tenant = server.tenant(DOMAIN)
    env = _env(server.url, tenant.client_id, tenant.client_secret)
    db = str(tmp_path / "orders.sqlite3")
    code, stdout, _ = run("connect", "shopify", env=env)
    assert code == EXIT_OK
    assert "(SHOPIFY_CLIENT_SECRET)" in stdout and tenant.client_secret not in stdout
    assert "2026-04" in stdout and "FULFILLED" in stdout
    code, stdout, _ = run("--db", db, "import", "shopify", "--json", env=env)
    assert code == EXIT_OK, stdout
    summary = json.loads(stdout)
    assert summary["imported"] + summary["skipped"] == 15
    code, stdout, _ = run("--db", db, "orders", "--format", "jsonl", env=env)
    orders = [json.loads(line) for line in stdout.splitlines()]
    assert orders and all(o["channel"] == "shopify" and o["order_number"].startswith("#") for o in orders)
    order = server.shop(DOMAIN).place_order([("A", 2, 71001), ("B", 1, 71002)])
    line_a, line_b = (str(x.id) for x in order.lines)
    ship = ("--db", db, "ship", "shopify", str(order.id), "--carrier", "Colissimo")
    code, stdout, _ = run(*ship, "--tracking", "6A1", "--item", f"{line_a}:1", "--notify-buyer", env=env)
    assert code == EXIT_OK and "sent" in stdout
    code, _, stderr = run(*ship, "--tracking", "6A2", "--item", f"{line_a}:1", "--item", line_b, env=env)
    assert code == EXIT_CONFIG and "Lyon store and Paris warehouse" in stderr, stdout + stderr
    code, stdout, _ = run(*ship, "--tracking", "6A3", "--item", line_b, env=env)
    assert code == EXIT_OK
    made = server.shop(DOMAIN).orders[order.id].fulfillments
    assert [(f.tracking[0][1], f.notified) for f in made] == [("6A1", True), ("6A3", False)]


def test_a_locked_shop_stops_the_command_with_exit_3(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    server = make_sandbox(orders=5)
    tenant = server.tenant(DOMAIN)
    server.add_fault("locked", times=-1)
    code, _, stderr = run(
        "--db",
        str(tmp_path / "o.sqlite3"),
        "import",
        "shopify",
        env=_env(server.url, tenant.client_id, tenant.client_secret),
    )
    assert code == EXIT_STOPPED and "locked" in stderr


def test_the_demo_runs_shopify_end_to_end(tmp_path: Path) -> None:
    code, stdout, _ = run("--db", str(tmp_path / "demo.sqlite3"), "demo", "shopify", "--orders", "30")
    assert code == EXIT_OK, stdout
    assert "3. Import" in stdout and ": sent" in stdout and "already_sent" in stdout


def test_webhooks_subscribe_and_list(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    server = make_sandbox(orders=2)
    tenant = server.tenant(DOMAIN)
    env = _env(server.url, tenant.client_id, tenant.client_secret)
    code, stdout, _ = run("webhooks", "list", "shopify", env=env)
    assert code == EXIT_OK and "no webhook subscriptions" in stdout
    for _ in range(2):
        code, stdout, _ = run("webhooks", "subscribe", "shopify", "--url", "https://hooks.example.com/", env=env)
        assert code == EXIT_OK and "orders/updated" in stdout
    assert len(tenant.subscriptions) == 10
    assert {url for _, url in tenant.subscriptions} == {"https://hooks.example.com/webhooks/shopify"}
