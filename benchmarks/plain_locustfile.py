"""The baseline for generator efficiency: a hand-written FastHttpUser doing the same request
as the generated locustfile's journey (one GET, no think time)."""

from locust import FastHttpUser, constant, task


class Plain(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get("/api/products", name="GET /api/products")
