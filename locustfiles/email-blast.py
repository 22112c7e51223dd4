# Generated from scenarios/email-blast.yaml by shop-loadtest 0.1.0. Do not edit: change the scenario
# and run `shop-loadtest generate scenarios/email-blast.yaml` again.
#
# Runs under plain Locust as well as under `shop-loadtest run`:
#   locust -f locustfiles/email-blast.py --headless
# Options added by the runtime: --slt-speedup N (play the shape N times faster) and
# --slt-results DIR (record results there; off by default).
"""email-blast: The newsletter goes out at 09:00: visits jump tenfold within two minutes of the
send, then fade with a 15-minute half-life. Readers land on the featured products from the mail
(JSON API), some search; subscribers log in and buy."""

import locust  # noqa: F401  first import: it patches the process with gevent

from pathlib import Path

from shop_loadtest.journeys import DataSource, Journey, RequestStep, Settings, ThinkStep
from shop_loadtest.runtime import ArrivalUser, CampaignShape, install

SCENARIO = 'email-blast'
HOST = None
# Requests go only to HOST, these, Locust's --host and --slt-allow-host; others are refused.
ALLOWED_HOSTS = []
# Environment variables the templates read: their values are masked in every output.
SECRET_ENV = ['SHOP_PASSWORD']
# Judged on the results folder (--slt-results) by `shop-loadtest report`.
BUDGETS = [
    'p95 < 500ms',
    'p99 < 1s',
    'error_rate < 1%',
    'p95 of POST /api/checkout < 800ms',
]
ABORT = []
HERE = Path(__file__).resolve().parent  # data files and user classes are found from here
SETTINGS = Settings(
    variables={'campaign': 'spring-newsletter',
               'featured': [3, 7, 12, 42, 64, 128, 256],
               'terms': ['oak', 'speaker', 'teapot', 'kite', 'wool']},
    data=[
        DataSource('subscribers', HERE / '../scenarios/data/customers.csv', per='user'),
    ],
    locale='de_DE',
    seed=20260315,
)

# (stage name, duration in campaign seconds, target journeys/s at its end)
STAGES = [
    ('open', 0.0, 3.0),
    ('before send', 300.0, 3.0),
    ('rise', 120.0, 30.0),
    ('decay', 225.0, 25.70420321185029),
    ('decay', 225.0, 22.091883092036785),
    ('decay', 225.0, 19.054296052536735),
    ('decay', 225.0, 16.5),
    ('decay', 225.0, 14.352101605925146),
    ('decay', 225.0, 12.545941546018392),
    ('decay', 225.0, 11.027148026268367),
    ('decay', 225.0, 9.75),
    ('decay', 225.0, 8.676050802962573),
    ('decay', 225.0, 7.772970773009196),
    ('decay', 225.0, 7.013574013134184),
    ('decay', 225.0, 6.375),
    ('decay', 225.0, 5.8380254014812865),
    ('decay', 225.0, 5.386485386504598),
    ('decay', 225.0, 5.006787006567092),
    ('decay', 225.0, 4.6875),
]

LAND_JOURNEY = Journey(
    name='land',
    weight=70.0,
    steps=[
        RequestStep(
            'GET', '/api/products/{{ random_choice(featured) }}',
            name='GET /api/products/{id}',
            query={'utm_source': 'newsletter', 'utm_campaign': '{{ campaign }}'},
            capture={'product_id': 'json:$.id'},
            check=[{'json': '$.price', 'exists': True}],
        ),
        ThinkStep(0.0, 15.0, dist='exponential', mean=3.0),
        RequestStep(
            'GET', '/api/search',
            name='GET /api/search',
            query={'q': '{{ random_choice(terms) }}'},
            capture={'related': {'from': 'json:$.items[*].id', 'pick': 'random', 'default': 1}},
        ),
        ThinkStep(1.0, 4.0),
        RequestStep(
            'GET', '/api/products/{{ related }}',
            name='GET /api/products/{id}',
            check=[{'json': '$.id', 'equals': '{{ related }}'}],
        ),
    ],
)

BUY_JOURNEY = Journey(
    name='buy',
    weight=30.0,
    on_start=[
        RequestStep(
            'POST', '/api/login',
            name='POST /api/login',
            json={'email': '{{ subscribers.email }}',
                  'password': "{{ env.get('SHOP_PASSWORD', 'secret') }}"},
            check=[{'json': '$.email', 'equals': '{{ subscribers.email }}'}],
        ),
    ],
    steps=[
        RequestStep(
            'GET', '/api/products/{{ random_choice(featured) }}',
            name='GET /api/products/{id}',
            query={'utm_source': 'newsletter', 'utm_campaign': '{{ campaign }}'},
            capture={'product_id': 'json:$.id'},
        ),
        ThinkStep(0.0, None, dist='normal', mean=2.0, sd=0.5),
        RequestStep(
            'POST', '/api/cart/items',
            name='POST /api/cart/items',
            json={'product_id': '{{ product_id }}', 'quantity': '{{ random_int(1, 2) }}'},
            check=[{'status': [201]},
                   {'json': '$.items[0].product_id', 'equals': '{{ product_id }}'}],
        ),
        ThinkStep(1.0, 2.0),
        RequestStep(
            'POST', '/api/checkout',
            name='POST /api/checkout',
            json={'email': '{{ subscribers.email }}',
                  'name': '{{ subscribers.name }}',
                  'address': '{{ faker.address() }}',
                  'notes': '{{ campaign }}'},
            capture={'order_url': 'header:Location', 'order_id': 'json:$.order_id'},
            check=[{'status': [201]}],
        ),
        RequestStep(
            'GET', '{{ order_url }}',
            name='GET /api/orders/{id}',
            check=[{'json': '$.order_id', 'equals': '{{ order_id }}'},
                   {'json': '$.status', 'equals': 'confirmed'}],
        ),
    ],
)


class Arrivals(ArrivalUser):
    """A pool of users that start journeys at the shape's arrival rate."""

    host = HOST
    journeys = [LAND_JOURNEY, BUY_JOURNEY]
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
