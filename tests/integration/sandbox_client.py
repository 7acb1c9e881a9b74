"""What the sandbox tests' API clients share: switching faults and reading the control routes."""

from typing import Any

import httpx


class SandboxControl:
    def __init__(self, sandbox: Any, http: httpx.Client):
        self.sandbox, self.http = sandbox, http

    def configure(self, **changes) -> dict:
        answer = self.http.post(f"{self.sandbox.base_url}/_sandbox/config", json=changes)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def control(self, route: str) -> list | dict:
        return self.http.get(f"{self.sandbox.base_url}/_sandbox/{route}").json()
