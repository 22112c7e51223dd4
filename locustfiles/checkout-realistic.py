# Generated from scenarios/checkout-realistic.yaml by shop-loadtest 0.1.0. Do not edit: change the scenario
# and run `shop-loadtest generate scenarios/checkout-realistic.yaml` again.
#
# Runs under plain Locust as well as under `shop-loadtest run`:
#   locust -f locustfiles/checkout-realistic.py --headless
# Options added by the runtime: --slt-speedup N (play the shape N times faster) and
# --slt-results DIR (record results there; off by default).
"""checkout-realistic: Deal-day checkout: browse 2-4 products, claim a deal (sold out: take the
next), buy; every order number and email exported for clean-up."""

import locust  # noqa: F401  first import: it patches the process with gevent

from shop_loadtest.journeys import (
    ExportStep,
    ForStep,
    IfStep,
    Journey,
    RepeatStep,
    RequestStep,
    Retry,
    SetStep,
    Settings,
    ThinkStep,
)
from shop_loadtest.runtime import ArrivalUser, CampaignShape, install

SCENARIO = 'checkout-realistic'
HOST = None
# Requests go only to HOST, these, Locust's --host and --slt-allow-host; others are refused.
ALLOWED_HOSTS = []
# Environment variables the templates read: their values are masked in every output.
SECRET_ENV = []
# Judged on the results folder (--slt-results) by `shop-loadtest report`.
BUDGETS = [
    'p95 < 500ms',
    'error_rate < 1%',
    'p95 of POST /api/checkout < 800ms',
]
ABORT = []
SETTINGS = Settings()

# (stage name, duration in campaign seconds, target journeys/s at its end)
STAGES = [
    ('warmup', 60.0, 2.0),
    ('deals', 60.0, 8.0),
    ('peak', 180.0, 8.0),
]

DEAL_CHECKOUT_JOURNEY = Journey(
    name='deal-checkout',
    weight=1.0,
    steps=[
        SetStep({'email': '{{ faker.email() }}', 'name': '{{ faker.name() }}'}),
        RequestStep(
            'GET', '/api/products?page={{ random_int(1, 5) }}',
            name='GET /api/products',
            capture={'product_id': 'json:$.items[0].id'},
            check=[{'header': 'Content-Type', 'contains': 'application/json'},
                   {'json': '$.items', 'type': 'array'}],
        ),
        RepeatStep(2, 4, steps=[
            RequestStep(
                'GET', '/api/products/{{ random_int(1, 300) }}',
                name='GET /api/products/{id}',
                check=[{'body_not_contains': 'Traceback'}],
            ),
            ThinkStep(0.2, 0.6),
        ]),
        RequestStep(
            'GET', '/api/deals',
            name='GET /api/deals',
            capture={'deal_ids': {'from': 'json:$.items[*].id', 'pick': 'all'},
                     'deal_urls': {'from': 'json:$.items[*].url', 'pick': 'all'}},
            check=[{'json': '$.items[0].url', 'equals': '{{ base_url }}/api/deals/1'}],
        ),
        ForStep('url', 'deal_urls[:2]', steps=[
            RequestStep(
                'GET', '{{ url }}',
                name='GET /api/deals/{id}',
                check=[{'json': '$.url', 'equals': '{{ url }}'}],
            ),
        ]),
        RequestStep(
            'POST', '/api/deals/{{ deal_ids[attempt - 1] }}/claim',
            name='POST /api/deals/{id}/claim',
            status=(201, 409),
            retry=Retry(times=4, until='response.status == 201', think=(0.1, 0.1)),
        ),
        IfStep('attempt > 1', steps=[
            RequestStep(
                'GET', '/api/cart',
                name='GET /api/cart after a sold-out deal',
                check=[{'json': '$.count', 'type': 'integer'}],
            ),
        ]),
        RequestStep(
            'POST', '/api/cart/items',
            name='POST /api/cart/items',
            json={'product_id': '{{ product_id }}', 'quantity': 1},
            status=(200, 201),
        ),
        ThinkStep(0.5, 1.0),
        RequestStep(
            'POST', '/api/checkout',
            name='POST /api/checkout',
            json={'email': '{{ email }}', 'name': '{{ name }}'},
            capture={'order_id': 'json:$.order_id'},
            status=(200, 201),
        ),
        ExportStep('orders.csv', ('order_id', 'email')),
    ],
)


class Arrivals(ArrivalUser):
    """A pool of users that start journeys at the shape's arrival rate."""

    host = HOST
    journeys = [DEAL_CHECKOUT_JOURNEY]
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
