# Generated from scenarios/black-friday-week.yaml by shop-loadtest 0.1.0. Do not edit: change the scenario
# and run `shop-loadtest generate scenarios/black-friday-week.yaml` again.
#
# Runs under plain Locust as well as under `shop-loadtest run`:
#   locust -f locustfiles/black-friday-week.py --headless
# Options added by the runtime: --slt-speedup N (play the shape N times faster) and
# --slt-results DIR (record results there; off by default).
"""black-friday-week: Last year's Black Friday week, hour by hour
(scenarios/data/black-friday-week.csv), plus the 50% growth the plan expects. Window shoppers
browse the API, deal hunters buy on the storefront with single-use coupon codes, members log in
once and reorder, and VIPs run a hand-written Locust class (locustfiles/custom.py)."""

import locust  # noqa: F401  first import: it patches the process with gevent

from pathlib import Path

from shop_loadtest.journeys import DataSource, Journey, RequestStep, Settings, ThinkStep
from shop_loadtest.runtime import CampaignShape, JourneyUser, install
from shop_loadtest.runtime.classes import user_class

SCENARIO = 'black-friday-week'
HOST = None
# Requests go only to HOST, these, Locust's --host and --slt-allow-host; others are refused.
ALLOWED_HOSTS = []
# Environment variables the templates read: their values are masked in every output.
SECRET_ENV = ['SHOP_PASSWORD']
# Judged on the results folder (--slt-results) by `shop-loadtest report`.
BUDGETS = [
    'p95 < 800ms',
    'error_rate < 1%',
]
ABORT = []
HERE = Path(__file__).resolve().parent  # data files and user classes are found from here
SETTINGS = Settings(
    data=[
        DataSource('coupons', HERE / '../scenarios/data/coupons.csv', mode='unique', per='user'),
        DataSource('customers', HERE / '../scenarios/data/customers.csv', per='user'),
        DataSource('terms', HERE / '../scenarios/data/search-terms.csv'),
    ],
)

# (stage name, duration in campaign seconds, target users at its end)
STAGES = [
    ('replay', 0.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 28.5),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 28.5),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 4.5),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 16.5),
    ('replay', 3600.0, 25.5),
    ('replay', 3600.0, 30.0),
    ('replay', 3600.0, 25.5),
    ('replay', 3600.0, 16.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 12.0),
    ('replay', 3600.0, 16.5),
    ('replay', 3600.0, 21.0),
    ('replay', 3600.0, 21.0),
    ('replay', 3600.0, 16.5),
    ('replay', 3600.0, 12.0),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 28.5),
    ('replay', 3600.0, 34.5),
    ('replay', 3600.0, 28.5),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 45.0),
    ('replay', 3600.0, 27.0),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 12.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 22.5),
    ('replay', 3600.0, 33.0),
    ('replay', 3600.0, 42.0),
    ('replay', 3600.0, 42.0),
    ('replay', 3600.0, 33.0),
    ('replay', 3600.0, 22.5),
    ('replay', 3600.0, 18.0),
    ('replay', 3600.0, 21.0),
    ('replay', 3600.0, 36.0),
    ('replay', 3600.0, 57.0),
    ('replay', 3600.0, 69.0),
    ('replay', 3600.0, 57.0),
    ('replay', 3600.0, 36.0),
    ('replay', 3600.0, 19.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 16.5),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 30.0),
    ('replay', 3600.0, 30.0),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 16.5),
    ('replay', 3600.0, 12.0),
    ('replay', 3600.0, 15.0),
    ('replay', 3600.0, 25.5),
    ('replay', 3600.0, 40.5),
    ('replay', 3600.0, 48.0),
    ('replay', 3600.0, 40.5),
    ('replay', 3600.0, 25.5),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 6.0),
    ('replay', 3600.0, 7.5),
    ('replay', 3600.0, 9.0),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 19.5),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 24.0),
    ('replay', 3600.0, 19.5),
    ('replay', 3600.0, 13.5),
    ('replay', 3600.0, 10.5),
    ('replay', 3600.0, 12.0),
    ('replay', 3600.0, 21.0),
    ('replay', 3600.0, 33.0),
    ('replay', 3600.0, 40.5),
    ('replay', 3600.0, 33.0),
    ('replay', 3600.0, 21.0),
    ('replay', 3600.0, 12.0),
]

WINDOW_SHOPPER_JOURNEY = Journey(
    name='window-shopper',
    weight=6.0,
    steps=[
        RequestStep(
            'GET', '/api/products',
            name='GET /api/products',
            query={'page': '{{ random_int(1, 15) }}'},
            capture={'product_id': {'from': 'json:$.items[*].id', 'pick': 'random'}},
        ),
        ThinkStep(0.0, 30.0, dist='exponential', mean=4.0),
        RequestStep(
            'GET', '/api/products/{{ product_id }}',
            name='GET /api/products/{id}',
            check=[{'json': '$.id', 'equals': '{{ product_id }}'}],
        ),
        ThinkStep(2.0, 6.0),
    ],
)

DEAL_HUNTER_JOURNEY = Journey(
    name='deal-hunter',
    weight=3.0,
    steps=[
        RequestStep(
            'GET', '/search',
            name='GET /search',
            query={'q': '{{ terms.term }}'},
            capture={'product_url': {'from': 'css:ul.products a@href',
                                     'pick': 'random',
                                     'default': '/products/1'}},
        ),
        ThinkStep(1.0, 3.0),
        RequestStep(
            'GET', '{{ product_url }}',
            name='GET /products/{id}',
            capture={'csrf': 'form:csrf_token', 'product_id': 'form:product_id'},
        ),
        RequestStep(
            'POST', '/cart/add',
            name='POST /cart/add',
            form={'product_id': '{{ product_id }}', 'quantity': 1, 'csrf_token': '{{ csrf }}'},
            check=[{'body_contains': 'Your cart'}],
        ),
        ThinkStep(0.0, None, dist='normal', mean=3.0, sd=1.0),
        RequestStep('GET', '/checkout', name='GET /checkout', capture={'csrf': 'form:csrf_token'}),
        RequestStep(
            'POST', '/checkout',
            name='POST /checkout',
            form={'name': '{{ faker.name() }}',
                  'email': '{{ faker.email() }}',
                  'address': '{{ faker.address() }}',
                  'notes': 'coupon {{ coupons.code }} (-{{ coupons.percent }}%)',
                  'csrf_token': '{{ csrf }}'},
            check=[{'body_contains': 'confirmed'}],
        ),
    ],
)

MEMBER_JOURNEY = Journey(
    name='member',
    weight=1.0,
    on_start=[
        RequestStep(
            'POST', '/api/login',
            name='POST /api/login',
            json={'email': '{{ customers.email }}',
                  'password': "{{ env.get('SHOP_PASSWORD', 'secret') }}"},
            capture={'session': 'cookie:shop_session'},
            check=[{'json': '$.email', 'equals': '{{ customers.email }}'}],
        ),
    ],
    steps=[
        RequestStep(
            'GET', '/api/me',
            name='GET /api/me',
            check=[{'json': '$.email', 'equals': '{{ customers.email }}'}],
        ),
        RequestStep(
            'POST', '/api/cart/items',
            name='POST /api/cart/items',
            json={'product_id': '{{ random_int(1, 300) }}', 'quantity': 1},
            capture={'dropped': 'json:$.items[0].product_id'},
            check=[{'status': [201]}],
        ),
        RequestStep(
            'DELETE', '/api/cart/items/{{ dropped }}',
            name='DELETE /api/cart/items/{id}',
            check=[{'json': '$.count', 'equals': 0}],
        ),
        RequestStep(
            'POST', '/api/cart/items',
            name='POST /api/cart/items',
            json={'product_id': '{{ random_int(1, 300) }}', 'quantity': 2},
            check=[{'status': [201]}],
        ),
        ThinkStep(1.0, 3.0),
        RequestStep(
            'POST', '/api/checkout',
            name='POST /api/checkout',
            json={'email': '{{ customers.email }}', 'name': '{{ customers.name }}'},
            check=[{'status': [201]}, {'json': '$.order_id', 'exists': True}],
        ),
    ],
    on_stop=[
        RequestStep('POST', '/api/logout', name='POST /api/logout'),
    ],
)


class WindowShopper(JourneyUser):
    host = HOST
    journey = WINDOW_SHOPPER_JOURNEY
    weight = 6.0
    settings = SETTINGS


class DealHunter(JourneyUser):
    host = HOST
    journey = DEAL_HUNTER_JOURNEY
    weight = 3.0
    settings = SETTINGS


class Member(JourneyUser):
    host = HOST
    journey = MEMBER_JOURNEY
    weight = 1.0
    settings = SETTINGS


# Hand-written user classes (journeys with `class:`), imported by file path.
Vip = user_class(HERE / 'custom.py', 'VipBuyer', alias='Vip', weight=1.0, host=HOST, journey='vip')


class Shape(CampaignShape):
    model = 'users'
    stages = STAGES
    time_scale = 1.0
    user_classes = [WindowShopper, DealHunter, Member, Vip]
    max_users = 200
    arrivals = 'even'
    max_lateness = 1.0
    spawn_rate = None


install(locust.events, scenario=SCENARIO, budgets=BUDGETS, abort=ABORT, host=HOST,
        allowed_hosts=ALLOWED_HOSTS, secret_env=SECRET_ENV)
