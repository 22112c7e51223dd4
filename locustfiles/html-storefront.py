# Generated from scenarios/html-storefront.yaml by shop-loadtest 0.1.0. Do not edit: change the scenario
# and run `shop-loadtest generate scenarios/html-storefront.yaml` again.
#
# Runs under plain Locust as well as under `shop-loadtest run`:
#   locust -f locustfiles/html-storefront.py --headless
# Options added by the runtime: --slt-speedup N (play the shape N times faster) and
# --slt-results DIR (record results there; off by default).
"""html-storefront: Shoppers on the server-rendered storefront, as a browser drives it: browse the
catalogue, search, open a product, add it to the cart with the form's CSRF token, then check out
as a guest or as a logged-in member, and see the order confirmed."""

import locust  # noqa: F401  first import: it patches the process with gevent

from pathlib import Path

from shop_loadtest.journeys import DataSource, Journey, RequestStep, Settings, ThinkStep
from shop_loadtest.runtime import CampaignShape, JourneyUser, install

SCENARIO = 'html-storefront'
HOST = None
# Requests go only to HOST, these, Locust's --host and --slt-allow-host; others are refused.
ALLOWED_HOSTS = []
# Environment variables the templates read: their values are masked in every output.
SECRET_ENV = ['SHOP_PASSWORD']
# Judged on the results folder (--slt-results) by `shop-loadtest report`.
BUDGETS = [
    'error_rate < 1%',
    'p95 < 1s',
]
ABORT = []
HERE = Path(__file__).resolve().parent  # data files and user classes are found from here
SETTINGS = Settings(
    variables={'password': "{{ env.get('SHOP_PASSWORD', 'secret') }}"},
    data=[
        DataSource('terms', HERE / '../scenarios/data/search-terms.csv', mode='sequential'),
        DataSource(
            'customers', HERE / '../scenarios/data/customers.csv',
            mode='sequential',
            per='user',
        ),
    ],
    locale='en_GB',
)

# (stage name, duration in campaign seconds, target users at its end)
STAGES = [
    ('ramp', 30.0, 8.0),
    ('hold', 120.0, 8.0),
    ('ramp down', 30.0, 0.0),
]

GUEST_JOURNEY = Journey(
    name='guest',
    weight=3.0,
    steps=[
        RequestStep(
            'GET', '/',
            name='GET /?page',
            query={'page': '{{ random_int(1, 12) }}'},
            capture={'product_url': {'from': 'css:ul.products a@href', 'pick': 'random'}},
            check=[{'body_contains': 'All products'}],
        ),
        ThinkStep(0.0, 4.0, dist='exponential', mean=1.0),
        RequestStep(
            'GET', '/search',
            name='GET /search',
            query={'q': '{{ terms.term }}'},
            capture={'hit_url': {'from': 'css:ul.products a@href',
                                 'pick': 'random',
                                 'default': '/products/1'}},
        ),
        ThinkStep(0.5, 1.5),
        RequestStep('GET', '{{ hit_url }}', name='GET /products/{id}'),
        RequestStep(
            'GET', '{{ product_url }}',
            name='GET /products/{id}',
            capture={'csrf': 'form:csrf_token',
                     'product_id': "form:form[action='/cart/add'] product_id",
                     'product_name': 'css:main h1'},
        ),
        RequestStep(
            'POST', '/cart/add',
            name='POST /cart/add',
            form={'product_id': '{{ product_id }}',
                  'quantity': '{{ random_int(1, 3) }}',
                  'csrf_token': '{{ csrf }}'},
            capture={'cart_url': 'header:Location'},
            check=[{'status': [303]}],
            follow_redirects=False,
        ),
        RequestStep(
            'GET', '{{ cart_url }}',
            name='GET /cart',
            check=[{'body_contains': '{{ product_name }}'}],
        ),
        ThinkStep(0.0, None, dist='normal', mean=1.0, sd=0.3),
        RequestStep('GET', '/checkout', name='GET /checkout', capture={'csrf': 'form:csrf_token'}),
        RequestStep(
            'POST', '/checkout',
            name='POST /checkout',
            form={'name': '{{ faker.name() }}',
                  'email': '{{ faker.email() }}',
                  'address': '{{ faker.address() }}',
                  'csrf_token': '{{ csrf }}'},
            capture={'order_url': 'header:Location'},
            check=[{'status': [303]}],
            follow_redirects=False,
        ),
        RequestStep(
            'GET', '{{ order_url }}',
            name='GET /orders/{id}',
            check=[{'body_contains': "Order #{{ order_url.rsplit('/', 1)[1] }} confirmed"}],
        ),
    ],
)

MEMBER_JOURNEY = Journey(
    name='member',
    weight=1.0,
    on_start=[
        RequestStep('GET', '/login', name='GET /login', capture={'csrf': 'form:csrf_token'}),
        RequestStep(
            'POST', '/login',
            name='POST /login',
            form={'email': '{{ customers.email }}',
                  'password': '{{ password }}',
                  'csrf_token': '{{ csrf }}',
                  'next': '/'},
            check=[{'status': [303]}],
            follow_redirects=False,
        ),
    ],
    steps=[
        RequestStep(
            'GET', '/products/{{ random_int(1, 300) }}',
            name='GET /products/{id}',
            capture={'csrf': 'form:csrf_token', 'product_id': 'form:product_id'},
        ),
        ThinkStep(0.5, 1.0),
        RequestStep(
            'POST', '/cart/add',
            name='POST /cart/add',
            form={'product_id': '{{ product_id }}', 'quantity': 1, 'csrf_token': '{{ csrf }}'},
            check=[{'body_contains': 'Your cart'}],
        ),
        RequestStep(
            'GET', '/checkout',
            name='GET /checkout',
            capture={'name': 'form:name'},
            check=[{'body_contains': '{{ customers.email }}'}],
        ),
        RequestStep(
            'POST', '/checkout',
            name='POST /checkout',
            form={'name': '{{ name }}',
                  'email': '{{ customers.email }}',
                  'address': '{{ faker.street_address() }}',
                  'csrf_token': '{{ csrf }}'},
            check=[{'body_contains': 'confirmed'}],
        ),
    ],
    on_stop=[
        RequestStep(
            'POST', '/logout',
            name='POST /logout',
            form={'csrf_token': '{{ csrf }}'},
            check=[{'status': [303]}],
            follow_redirects=False,
        ),
    ],
)


class Guest(JourneyUser):
    host = HOST
    journey = GUEST_JOURNEY
    weight = 3.0
    settings = SETTINGS


class Member(JourneyUser):
    host = HOST
    journey = MEMBER_JOURNEY
    weight = 1.0
    settings = SETTINGS


class Shape(CampaignShape):
    model = 'users'
    stages = STAGES
    time_scale = 1.0
    user_classes = [Guest, Member]
    max_users = 2000
    arrivals = 'even'
    max_lateness = 1.0
    spawn_rate = None


install(locust.events, scenario=SCENARIO, budgets=BUDGETS, abort=ABORT, host=HOST,
        allowed_hosts=ALLOWED_HOSTS, secret_env=SECRET_ENV)
