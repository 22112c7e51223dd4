"""The demo shop, for real: a DemoShop on a free port, spoken to over HTTP with the stdlib."""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shop_loadtest.demo_shop import DemoShop, create_app
from shop_loadtest.errors import InputError, RunError

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TOKEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # tests look at the 303 itself


class Client:
    """One visitor: its own cookie jar, redirects not followed, HTTP errors returned."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(
        self, method: str, path: str, *, json_body: Any = None, form: dict[str, str] | None = None
    ) -> Reply:
        data, headers = None, {}
        if json_body is not None:
            data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.headers, err.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, *, form: dict[str, str] | None = None) -> Reply:
        return self.request("POST", path, json_body=body, form=form)

    def token(self, path: str) -> str:
        page = self.get(path)
        assert page.status == 200, page.text
        found = TOKEN.search(page.text)
        assert found, f"no CSRF token in {path}"
        return found.group(1)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoShop]:
    with DemoShop(tmp_path_factory.mktemp("shop") / "shop.sqlite") as running:
        yield running


@pytest.fixture
def client(shop: DemoShop) -> Client:
    return Client(shop.url)


def buy(client: Client, product_id: int = 1, quantity: int = 1) -> Reply:
    added = client.post("/api/cart/items", {"product_id": product_id, "quantity": quantity})
    assert added.status == 201, added.text
    return client.post("/api/checkout", {"email": "ann@example.com", "name": "Ann"})


def scrape(client: Client) -> Samples:
    """Every sample of /metrics by (name, sorted labels)."""
    reply = client.get("/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_health_answers_ok(client: Client) -> None:
    reply = client.get("/health")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})


def test_products_are_paginated_with_the_catalogue_total(client: Client) -> None:
    first = client.get("/api/products").json()
    assert (first["page"], first["per_page"], first["total"]) == (1, 20, 300)
    assert [p["id"] for p in first["items"]] == list(range(1, 21))
    assert set(first["items"][0]) == {"id", "name", "price", "category", "stock"}

    third = client.get("/api/products?page=3&per_page=50").json()
    assert [p["id"] for p in third["items"]] == list(range(101, 151))
    last = client.get("/api/products?page=4&per_page=80").json()
    assert len(last["items"]) == 60 and last["total"] == 300
    assert client.get("/api/products?page=99").json()["items"] == []


def test_products_filter_by_category_and_text(client: Client) -> None:
    category = client.get("/api/products/1").json()["category"]
    found = client.get(f"/api/products?category={category}&per_page=100").json()
    assert 0 < found["total"] < 300
    assert {p["category"] for p in found["items"]} == {category}
    mugs = client.get("/api/products?q=mug&per_page=100").json()
    assert mugs["total"] == len(mugs["items"]) > 0


@pytest.mark.parametrize(
    "query", ["page=0", "page=x", "page=99999999999999999999999", "per_page=101", "per_page=-1"]
)
def test_bad_paging_is_400_naming_the_field(client: Client, query: str) -> None:
    reply = client.get(f"/api/products?{query}")
    assert reply.status == 400
    assert query.split("=")[0] in reply.json()["error"]


def test_a_missing_product_is_404_json(client: Client) -> None:
    reply = client.get("/api/products/9999")
    assert reply.status == 404
    assert reply.json() == {"error": "product 9999 not found"}
    assert client.get("/products/9999").status == 404


def test_search_matches_names_and_descriptions(client: Client) -> None:
    word = client.get("/api/products/42").json()["name"].split()[-1].lower()
    result = client.get(f"/api/search?q={word}&limit=100").json()
    assert 42 in [p["id"] for p in result["items"]]
    assert result["total"] == len(result["items"])
    for item in result["items"]:
        detail = client.get(f"/api/products/{item['id']}").json()
        assert word in (detail["name"] + " " + detail["description"]).lower()
    # % and _ are literal, not LIKE wildcards
    assert client.get("/api/search?q=%25").json() == {"items": [], "total": 0}
    assert client.get("/api/search").status == 400


def test_each_session_has_its_own_cart(shop: DemoShop) -> None:
    ann, bob = Client(shop.url), Client(shop.url)
    assert ann.post("/api/cart/items", {"product_id": 1, "quantity": 2}).status == 201
    assert ann.post("/api/cart/items", {"product_id": "1"}).json()["count"] == 3
    assert bob.post("/api/cart/items", {"product_id": 2, "quantity": 1}).status == 201

    ann_cart, bob_cart = ann.get("/api/cart").json(), bob.get("/api/cart").json()
    assert [(i["product_id"], i["quantity"]) for i in ann_cart["items"]] == [(1, 3)]
    assert [(i["product_id"], i["quantity"]) for i in bob_cart["items"]] == [(2, 1)]
    assert ann_cart["total"] == pytest.approx(3 * ann_cart["items"][0]["price"])

    assert ann.request("DELETE", "/api/cart/items/1").json()["items"] == []
    assert ann.request("DELETE", "/api/cart/items/1").status == 404
    assert bob.get("/api/cart").json()["count"] == 1


def test_adding_a_missing_product_or_a_bad_quantity_is_refused(client: Client) -> None:
    assert client.post("/api/cart/items", {"product_id": 9999}).status == 404
    assert client.post("/api/cart/items", {"product_id": 1, "quantity": 0}).status == 400
    assert client.post("/api/cart/items", {"quantity": 1}).status == 400
    assert client.get("/api/cart").json()["items"] == []


def test_checkout_writes_the_order_and_its_lines_and_empties_the_cart(shop: DemoShop) -> None:
    client = Client(shop.url)
    client.post("/api/cart/items", {"product_id": 3, "quantity": 2})
    client.post("/api/cart/items", {"product_id": 4, "quantity": 1})
    reply = client.post(
        "/api/checkout",
        {"email": "ann@example.com", "name": "Ann Lee", "address": "1 Main St, Springfield"},
    )
    assert reply.status == 201, reply.text
    order = reply.json()
    assert [(ln["product_id"], ln["quantity"]) for ln in order["lines"]] == [(3, 2), (4, 1)]
    assert order["total"] == pytest.approx(sum(ln["subtotal"] for ln in order["lines"]))
    assert reply.headers["Location"] == f"/api/orders/{order['order_id']}"
    assert client.get("/api/cart").json()["items"] == []

    stored = client.get(f"/api/orders/{order['order_id']}").json()
    assert (stored["email"], stored["address"], stored["total"]) == (
        "ann@example.com",
        "1 Main St, Springfield",
        order["total"],
    )
    with sqlite3.connect(shop.db_path) as db:
        (receipt,) = db.execute(
            "SELECT receipt FROM orders WHERE id = ?", (order["order_id"],)
        ).fetchone()
        lines = db.execute(
            "SELECT product_id, quantity FROM order_lines WHERE order_id = ? ORDER BY id",
            (order["order_id"],),
        ).fetchall()
    assert lines == [(3, 2), (4, 1)]
    assert f"order #{order['order_id']}" in receipt and len(receipt) > 300
    assert client.get("/api/orders/999999").status == 404


def test_checkout_of_an_empty_cart_is_400(client: Client) -> None:
    reply = client.post("/api/checkout", {"email": "ann@example.com", "name": "Ann"})
    assert (reply.status, reply.json()) == (400, {"error": "cart is empty"})


def test_checkout_needs_an_email_and_a_name(client: Client) -> None:
    client.post("/api/cart/items", {"product_id": 1})
    assert client.post("/api/checkout", {"email": "nope", "name": "Ann"}).status == 400
    assert client.post("/api/checkout", {"email": "ann@example.com"}).status == 400
    assert client.get("/api/cart").json()["count"] == 1


def test_html_flow_from_product_page_to_confirmation(client: Client) -> None:
    catalogue = client.get("/?page=2").text
    assert 'href="/products/25"' in catalogue and 'href="/?page=3"' in catalogue
    found = TOKEN.search(catalogue)
    assert found is not None  # quick-add forms carry it
    quick = client.post(
        "/cart/add", form={"product_id": "25", "quantity": "1", "csrf_token": found.group(1)}
    )
    assert quick.status == 303

    added = client.post(
        "/cart/add",
        form={"product_id": "7", "quantity": "2", "csrf_token": client.token("/products/7")},
    )
    assert added.status == 303 and added.headers["Location"].endswith("/cart")
    cart = client.get("/cart").text
    assert "/products/7" in cart and "/products/25" in cart

    token = client.token("/checkout")
    placed = client.post(
        "/checkout",
        form={
            "name": "Ann",
            "email": "ann@example.com",
            "address": "1 Main St",
            "csrf_token": token,
        },
    )
    assert placed.status == 303
    path = urllib.parse.urlsplit(placed.headers["Location"]).path
    order_id = int(path.rsplit("/", 1)[1])
    assert path == f"/orders/{order_id}"
    assert f"Order #{order_id} confirmed" in client.get(path).text
    assert client.get("/api/cart").json()["items"] == []


def test_html_posts_without_the_session_token_are_403(shop: DemoShop) -> None:
    ann, eve = Client(shop.url), Client(shop.url)
    ann_token = ann.token("/products/1")
    eve.token("/products/1")  # eve has a session and a token of her own
    for form in (
        {"product_id": "1"},
        {"product_id": "1", "csrf_token": "forged"},
        {"product_id": "1", "csrf_token": ann_token},
    ):
        assert eve.post("/cart/add", form=form).status == 403
    assert eve.post("/login", form={"email": "e@example.com", "password": "secret"}).status == 403
    assert eve.get("/api/cart").json()["items"] == []


def test_login_with_the_demo_password(shop: DemoShop) -> None:
    api = Client(shop.url)
    bad = api.post("/api/login", {"email": "demo@example.com", "password": "wrong"})
    assert bad.status == 401 and api.get("/api/me").status == 401
    ok = api.post("/api/login", {"email": "demo@example.com", "password": "secret"})
    assert ok.json() == {"email": "demo@example.com", "name": "Demo Customer"}
    assert api.get("/api/me").json()["email"] == "demo@example.com"

    web = Client(shop.url)
    token = web.token("/login?next=/cart")
    wrong = web.post(
        "/login",
        form={"email": "x@example.com", "password": "no", "next": "/cart", "csrf_token": token},
    )
    assert wrong.status == 401 and "Wrong email or password" in wrong.text
    done = web.post(
        "/login",
        form={"email": "x@example.com", "password": "secret", "next": "/cart", "csrf_token": token},
    )
    assert done.status == 303 and done.headers["Location"].endswith("/cart")
    assert web.get("/api/me").json() == {"email": "x@example.com", "name": "x"}
    elsewhere = web.post(
        "/login",
        form={
            "email": "x@example.com",
            "password": "secret",
            "next": "//evil.example",
            "csrf_token": token,
        },
    )
    assert urllib.parse.urlsplit(elsewhere.headers["Location"]).netloc != "evil.example"


def test_forty_concurrent_checkouts_all_succeed(shop: DemoShop) -> None:
    n = 40
    clients = [Client(shop.url) for _ in range(n)]
    for i, c in enumerate(clients):
        assert c.post("/api/cart/items", {"product_id": i + 1, "quantity": 1}).status == 201
    start = threading.Barrier(n)
    replies: list[Reply] = []
    lock = threading.Lock()

    def checkout(c: Client) -> None:
        start.wait()
        reply = c.post("/api/checkout", {"email": "many@example.com", "name": "Many"})
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=checkout, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r.status for r in replies] == [201] * n, [r.text for r in replies if r.status != 201]
    order_ids = {r.json()["order_id"] for r in replies}
    assert len(order_ids) == n
    with sqlite3.connect(shop.db_path) as db:
        marks = ",".join("?" * n)
        lines = db.execute(
            f"SELECT count(*) FROM order_lines WHERE order_id IN ({marks})", sorted(order_ids)
        ).fetchone()[0]
    assert lines == n


def test_metrics_expose_requests_by_route_and_the_database(tmp_path: Path) -> None:
    with DemoShop(tmp_path / "shop.sqlite") as fresh:
        client = Client(fresh.url)
        client.get("/api/products/3")
        client.get("/api/products/4")
        client.get("/no/such/page")
        before = scrape(client)
        assert (
            before[
                "shop_http_requests_total",
                (("method", "GET"), ("route", "/api/products/<int:id>"), ("status", "200")),
            ]
            == 2
        )
        assert (
            before[
                "shop_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/api/products/<int:id>")),
            ]
            == 2
        )
        routes = {dict(labels).get("route") for _, labels in before}
        assert "/api/products/3" not in routes and "<unmatched>" in routes
        assert before["shop_db_storage_limit_bytes", ()] == 0
        assert before["shop_orders_total", ()] == 0
        assert before["shop_db_rows", (("table", "products"),)] == 300
        assert before["shop_open_connections", ()] >= 1
        assert before["shop_http_requests_in_flight", ()] == 1  # this scrape

        for i in range(40):
            assert buy(client, product_id=i + 1).status == 201
        after = scrape(client)
        assert after["shop_orders_total", ()] == 40
        assert after["shop_db_rows", (("table", "order_lines"),)] == 40
        assert after["shop_db_size_bytes", ()] > before["shop_db_size_bytes", ()] > 0


def test_a_storage_cap_fails_checkout_like_a_full_disk_while_reads_work(
    tmp_path: Path,
) -> None:
    with DemoShop(tmp_path / "shop.sqlite", storage_limit_mb=0.15) as capped:
        client = Client(capped.url)
        limit = scrape(client)["shop_db_storage_limit_bytes", ()]
        assert 0 < limit <= 150_000
        statuses = []
        for _ in range(2000):
            reply = buy(client)
            statuses.append(reply.status)
            if reply.status != 201:
                break
        assert statuses[-1] == 507 and set(statuses[:-1]) == {201} and len(statuses) > 10
        assert reply.json() == {"error": "database or disk is full"}
        assert client.post("/api/checkout", {"email": "a@example.com", "name": "A"}).status == 507
        assert client.get("/api/cart").json()["count"] == 1  # the failed order kept the cart

        assert client.get("/health").status == 200
        assert client.get("/api/products?page=2").json()["total"] == 300
        assert client.get("/api/orders/1").status == 200
        metrics = scrape(client)
        assert metrics["shop_db_size_bytes", ()] <= limit
        assert metrics["shop_orders_total", ()] == len(statuses) - 1


def test_same_seed_gives_the_same_catalogue(tmp_path: Path) -> None:
    names = []
    for name in ("a.sqlite", "b.sqlite"):
        app = create_app(tmp_path / name, products=30, seed=7)
        names.append(
            [
                p["name"]
                for p in app.test_client().get("/api/products?per_page=100").get_json()["items"]
            ]
        )
        app.extensions["demo_shop"]["db"].close()
    assert names[0] == names[1] and len(names[0]) == 30


@pytest.mark.parametrize("limit", [0, -1.5])
def test_a_non_positive_storage_limit_is_an_input_error(tmp_path: Path, limit: float) -> None:
    with pytest.raises(InputError, match="storage limit"):
        create_app(tmp_path / "shop.sqlite", storage_limit_mb=limit)


def test_a_port_in_use_is_a_run_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RunError, match=f"cannot listen on 127.0.0.1:{port}"):
            DemoShop(tmp_path / "shop.sqlite", port=port).start()


def test_module_entry_point_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shop_loadtest.demo_shop",
            "--port",
            "0",
            "--db",
            str(tmp_path / "shop.sqlite"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.fullmatch(r"demo shop listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert found and found.group(2) != "0", line
        assert Client(found.group(1)).get("/health").status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_shop_does_not_import_locust_or_requests() -> None:
    code = (
        "import sys, shop_loadtest.demo_shop; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'locust', 'gevent', 'requests', 'urllib3'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
