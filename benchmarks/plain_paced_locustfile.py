"""The baseline for the open model: a hand-written FastHttpUser paced to a fixed rate per
user (`constant_throughput`), so that users x PACE_PER_USER requests/s reach the server: the
cheapest way stock Locust sends a given rate. Same request as the generated journey."""

import os

from locust import FastHttpUser, constant_throughput, task

PACE_PER_USER = float(os.environ.get("SLT_BENCH_PACE", "20"))


class PlainPaced(FastHttpUser):
    wait_time = constant_throughput(PACE_PER_USER)

    @task
    def get(self) -> None:
        self.client.get("/api/products", name="GET /api/products")
