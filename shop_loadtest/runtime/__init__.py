"""What generated locustfiles import: the users, the shape and `install`.

The names below are loaded on first use, not at package import: `users` and `state` import
locust (gevent patches the process), while the pure parts of the runtime (the machine
sampler, compiled journeys, sessions) are also used by the CLI process and the tests, which
must stay unpatched. A locustfile imports locust first anyway, as the engine needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shop_loadtest.journeys import Journey, RequestStep, ThinkStep
    from shop_loadtest.runtime.shape import CampaignShape
    from shop_loadtest.runtime.state import install
    from shop_loadtest.runtime.users import ArrivalUser, JourneyUser

_HOMES = {
    "ArrivalUser": "shop_loadtest.runtime.users",
    "JourneyUser": "shop_loadtest.runtime.users",
    "CampaignShape": "shop_loadtest.runtime.shape",
    "install": "shop_loadtest.runtime.state",
    "Journey": "shop_loadtest.journeys",
    "RequestStep": "shop_loadtest.journeys",
    "ThinkStep": "shop_loadtest.journeys",
}

__all__ = ["ArrivalUser", "CampaignShape", "Journey", "JourneyUser", "RequestStep", "ThinkStep",
           "install"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
