from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.servers import CountingServer

# Fuzz budgets (tests/test_fuzz.py): `make test` runs the default profile (derandomized: the
# same 1,000 inputs each time, about 15 s), `make fuzz` the `fuzz` profile (HYPOTHESIS_PROFILE=
# fuzz: 25,000 new ones). Examples through the validation in this process, and through the
# real command (a fresh process each, so fewer).
FUZZ_EXAMPLES = {"default": int(os.environ.get("SLT_FUZZ_EXAMPLES", 1000)), "fuzz": 25000}
FUZZ_CLI_EXAMPLES = {"default": 6, "fuzz": 200}
for _name, _count in FUZZ_EXAMPLES.items():
    settings.register_profile(
        _name, max_examples=_count, deadline=None, derandomize=_name == "default",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture])
FUZZ_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(FUZZ_PROFILE)

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
