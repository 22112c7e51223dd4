"""`python -m shop_loadtest.demo_shop --port 8080 --db shop.sqlite [--storage-limit-mb 2]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from shop_loadtest.demo_shop.server import serve
from shop_loadtest.errors import ShopLoadtestError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shop_loadtest.demo_shop",
        description="Run the demo shop until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--db", type=Path, required=True, help="SQLite file, created if missing")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument(
        "--storage-limit-mb",
        type=float,
        default=None,
        help="cap the database at N MB; writes past it fail like a full disk",
    )
    parser.add_argument("--threads", type=int, default=8, help="worker threads")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(
            args.db,
            args.host,
            args.port,
            storage_limit_mb=args.storage_limit_mb,
            threads=args.threads,
        )
    except ShopLoadtestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
