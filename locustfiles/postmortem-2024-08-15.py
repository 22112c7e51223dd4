# Generated from scenarios/postmortem-2024-08-15.yaml by shop-loadtest 0.1.0. Do not edit: change the scenario
# and run `shop-loadtest generate scenarios/postmortem-2024-08-15.yaml` again.
#
# Runs under plain Locust as well as under `shop-loadtest run`:
#   locust -f locustfiles/postmortem-2024-08-15.py --headless
# Options added by the runtime: --slt-speedup N (play the shape N times faster) and
# --slt-results DIR (record results there; off by default).
"""postmortem-2024-08-15: Promotion day: traffic x12 in a minute, the database's storage fills,
checkout fails with 507 "database or disk is full". Fails on used(storage) before the error
burst."""

import locust  # noqa: F401  first import: it patches the process with gevent

from shop_loadtest.journeys import Journey, RequestStep, Settings, ThinkStep
from shop_loadtest.runtime import ArrivalUser, CampaignShape, install

SCENARIO = 'postmortem-2024-08-15'
HOST = None
# Requests go only to HOST, these, Locust's --host and --slt-allow-host; others are refused.
ALLOWED_HOSTS = []
# Environment variables the templates read: their values are masked in every output.
SECRET_ENV = []
# Judged on the results folder (--slt-results) by `shop-loadtest report`.
BUDGETS = [
    'used(storage) < 80% for 5s',
    'runway(storage) > 100%',
    'error_rate < 1% for 5s',
    'p95 < 500ms',
]
ABORT = []
SETTINGS = Settings()

# (stage name, duration in campaign seconds, target journeys/s at its end)
STAGES = [
    ('before', 300.0, 5.0),
    ('newsletter', 60.0, 60.0),
    ('promotion', 600.0, 60.0),
]

BROWSE_JOURNEY = Journey(
    name='browse',
    weight=60.0,
    steps=[
        RequestStep(
            'GET', '/api/products?page={{ random_int(1, 5) }}',
            name='GET /api/products',
            capture={'product_id': 'json:$.items[0].id'},
        ),
        RequestStep('GET', '/api/products/{{ product_id }}', name='GET /api/products/{id}'),
    ],
)

BUY_JOURNEY = Journey(
    name='buy',
    weight=40.0,
    steps=[
        RequestStep(
            'POST', '/api/cart/items',
            name='POST /api/cart/items',
            json={'product_id': '{{ random_int(1, 300) }}', 'quantity': 1},
            status=(201,),
        ),
        RequestStep(
            'POST', '/api/checkout',
            name='POST /api/checkout',
            json={'email': '{{ faker.email() }}', 'name': '{{ faker.name() }}'},
            status=(201,),
        ),
    ],
)


class Arrivals(ArrivalUser):
    """A pool of users that start journeys at the shape's arrival rate."""

    host = HOST
    journeys = [BROWSE_JOURNEY, BUY_JOURNEY]
    settings = SETTINGS


class Shape(CampaignShape):
    model = 'arrival_rate'
    stages = STAGES
    time_scale = 1.0
    user_classes = [Arrivals]
    max_users = 2000
    arrivals = 'even'
    max_lateness = 1.0
    spawn_rate = None


install(locust.events, scenario=SCENARIO, budgets=BUDGETS, abort=ABORT, host=HOST,
        allowed_hosts=ALLOWED_HOSTS, secret_env=SECRET_ENV)
