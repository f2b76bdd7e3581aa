"""Where the API is and who we are: from arguments or ORCHESTRATOR_URL / ORCHESTRATOR_TOKEN."""

import os
from dataclasses import dataclass

from orchestrator_client.errors import OrchestratorError

URL_VARIABLE = "ORCHESTRATOR_URL"
TOKEN_VARIABLE = "ORCHESTRATOR_TOKEN"  # noqa: S105 (the variable's name, not a token)
API_PREFIX = "/api/v1"
USER_AGENT = "orchestrator-client/1"


@dataclass(frozen=True)
class Connection:
    """The API's base URL (`http://host:8000`, with or without `/api/v1`), the token and the
    timeout of one request (long polls get their wait on top)."""

    url: str
    token: str
    timeout: float = 10.0

    @classmethod
    def resolve(cls, url: str | None, token: str | None, timeout: float) -> "Connection":
        url = url or os.environ.get(URL_VARIABLE)
        token = token or os.environ.get(TOKEN_VARIABLE)
        if not url:
            raise OrchestratorError(f"no API URL: pass url= or set {URL_VARIABLE}")
        if not token:
            raise OrchestratorError(f"no API token: pass token= or set {TOKEN_VARIABLE}")
        return cls(url, token, timeout)

    @property
    def api_url(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith(API_PREFIX) else base + API_PREFIX

    def http_options(self) -> dict:
        """Keyword arguments for httpx.Client / httpx.AsyncClient."""
        return {
            "base_url": self.api_url,
            "headers": {
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            "timeout": self.timeout,
        }
