"""Prometheus metrics of one shop, in a registry of its own (several shops may share a process).

HTTP metrics are labelled by the URL rule (`/api/products/<int:id>`), never the raw path, so
their cardinality is the number of routes. Database figures are read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shop_loadtest.demo_shop.db import Database

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"  # 404s and the like: one label value, whatever the path

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DatabaseCollector(Collector):
    """Size, cap, row counts and connections of the shop's database, read at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        counts = self.db.row_counts()
        yield GaugeMetricFamily(
            "shop_db_size_bytes",
            "Size of the database (page_count * page_size).",
            value=self.db.size_bytes(),
        )
        yield GaugeMetricFamily(
            "shop_db_storage_limit_bytes",
            "Storage cap of the database (max_page_count * page_size); 0 when uncapped.",
            value=(self.db.max_page_count or 0) * self.db.page_size,
        )
        yield CounterMetricFamily(
            "shop_orders", "Orders stored in the database.", value=counts["orders"]
        )
        rows = GaugeMetricFamily("shop_db_rows", "Rows per table.", labels=["table"])
        for table, n in counts.items():
            rows.add_metric([table], n)
        yield rows
        yield GaugeMetricFamily(
            "shop_open_connections",
            "Open SQLite connections (one per server thread).",
            value=self.db.open_connections,
        )


class ShopMetrics:
    """The shop's registry and HTTP instruments; `install` wires them into an app."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shop_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "shop_http_request_duration_seconds",
            "Time to answer, by route.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "shop_http_requests_in_flight",
            "Requests being answered now.",
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(db))

    def install(self, app: Flask) -> None:
        app.before_request(self._before)
        app.after_request(self._after)
        app.add_url_rule("/metrics", "metrics", self._expose)
        app.wsgi_app = self._count_in_flight(app.wsgi_app)  # type: ignore[method-assign, assignment]

    def _count_in_flight(self, wsgi_app: WSGIApp) -> WSGIApp:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with self.in_flight.track_inprogress():
                return wsgi_app(environ, start_response)

        return counted

    @staticmethod
    def _before() -> None:
        g.shop_started = time.perf_counter()

    def _after(self, response: Response) -> Response:
        started = g.get("shop_started")
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        if started is not None:
            self.duration.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    def _expose(self) -> Response:
        return Response(
            generate_latest(self.registry), mimetype=None, content_type=CONTENT_TYPE_LATEST
        )
