from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import CountingServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real demo shop on a free loopback port, shared by the session's tests."""
    from shop_loadtest.demo_shop import DemoShop

    db = tmp_path_factory.mktemp("shop") / "shop.sqlite"
    with DemoShop(db, port=0) as shop:
        yield shop.url


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    with CountingServer() as server:
        yield server


@pytest.fixture
def slow_server() -> Iterator[CountingServer]:
    with CountingServer(delay_s=0.05) as server:
        yield server


def cli(*args: str, cwd: Path = ROOT, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """Run `shop-loadtest` as a user would: a fresh process, real exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "shop_loadtest", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)
