"""``python -m channel_oxatis.sandbox``: run the Oxatis sandbox until interrupted."""

from __future__ import annotations

import argparse
import sys

from channel_oxatis.sandbox.server import FAULT_KINDS, Fault, SandboxConfig, SandboxServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m channel_oxatis.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--orders", type=int, default=200, help="number of seeded orders (10 to 100000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--token", default="sandbox-token", help="the token the store accepts")
    parser.add_argument(
        "--stores",
        type=int,
        default=1,
        help="host N merchants' stores, reached with TOKEN, TOKEN-2 ... TOKEN-N (each its own orders)",
    )
    parser.add_argument("--app-id", default=None, help="require this AppId (default: any)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--timezone", default="Europe/Paris")
    parser.add_argument("--no-shipped-state", action="store_true", help="a store without SST-SHIPPED")
    parser.add_argument("--quota-after", type=int, default=None, help="reply 504 after N calls")
    parser.add_argument("--maintenance", type=int, default=0, help="reply 600 to the first N calls")
    parser.add_argument("--html-errors", type=int, default=0, help="reply an HTML 500 page to the first N calls")
    parser.add_argument("--malformed", type=int, default=0, help="reply malformed XML to the first N calls")
    parser.add_argument("--entity-bomb", type=int, default=0, help="reply an entity-expansion payload N times")
    parser.add_argument("--wrong-type-order", type=int, default=None, help="OxID of an order with a bad Quantity")
    parser.add_argument(
        "--modify-between-pages",
        default=None,
        metavar="PAGE:COUNT",
        help="after serving list page PAGE, modify COUNT of its orders",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:TIMES]",
        help=f"any fault: {', '.join(sorted(FAULT_KINDS))}",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    faults: list[Fault] = []
    if args.quota_after is not None:
        faults.append(Fault("quota", times=-1, after=args.quota_after))
    for kind, times in (
        ("maintenance", args.maintenance),
        ("html500", args.html_errors),
        ("malformed", args.malformed),
        ("entity_bomb", args.entity_bomb),
    ):
        if times:
            faults.append(Fault(kind, times=times))
    for spec in args.fault:
        kind, _, times = spec.partition(":")
        faults.append(Fault(kind, times=int(times or 1)))
    modify = None
    if args.modify_between_pages:
        page, _, count = args.modify_between_pages.partition(":")
        modify = (int(page), int(count or 1))
    return SandboxConfig(
        count=args.orders,
        seed=args.seed,
        token=args.token,
        app_id=args.app_id,
        latency=args.latency,
        timezone=args.timezone,
        with_shipped_state=not args.no_shipped_state,
        wrong_type_order=args.wrong_type_order,
        modify_between_pages=modify,
        faults=faults,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = SandboxServer(config_from_args(args), host=args.host, port=args.port)
    for n in range(2, args.stores + 1):
        server.add_store(f"{args.token}-{n}", count=args.orders, seed=args.seed + n)
    stores = f"{args.stores} stores of {args.orders} orders" if args.stores > 1 else f"{args.orders} orders"
    print(f"Oxatis sandbox on {server.url} ({stores}, seed {args.seed}); Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
