"""shop-loadtest: load-test an online shop before a campaign.

The package root imports nothing heavy: importing locust patches the process with gevent,
so only `shop_loadtest.runtime` and generated locustfiles import it.
"""

__version__ = "0.1.0"
