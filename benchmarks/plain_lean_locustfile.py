"""plain_locustfile.py with the runtime's cookie jar: the same hand-written user, so that
`generated / plain-lean` shows what the journey layer and the recording cost by themselves."""

from typing import Any

from locust import FastHttpUser, constant, task

from shop_loadtest.runtime.cookies import use_lean_cookie_jar


class PlainLean(FastHttpUser):
    wait_time = constant(0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_lean_cookie_jar(self.client)

    @task
    def get(self) -> None:
        self.client.get("/api/products", name="GET /api/products")
