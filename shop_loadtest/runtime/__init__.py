"""What generated locustfiles import. Importing this package imports locust (gevent patches
the process), so the CLI process never imports it."""

import locust  # noqa: F401  first: it monkey-patches the process with gevent

from shop_loadtest.journeys import Journey, RequestStep, ThinkStep
from shop_loadtest.runtime.shape import CampaignShape
from shop_loadtest.runtime.state import install
from shop_loadtest.runtime.users import ArrivalUser, JourneyUser

__all__ = [
    "ArrivalUser",
    "CampaignShape",
    "Journey",
    "JourneyUser",
    "RequestStep",
    "ThinkStep",
    "install",
]
