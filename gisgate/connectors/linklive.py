"""LinkLive (Journey Engine) API source (domain-spec §5.3).

Every call carries `Authorization: ApiKey llapi_…` (a key made in LinkLive Admin › API Keys, role
Admin). `userStates` and `queueEngagementIntervals` are asked for one window at a time, in Unix time
UTC (`startTime` / `endTime`, seconds unless `time_unit = "ms"`); an answer that names a
`nextPageToken` is followed page by page (`pageToken=`), each page landing as its own file.
`queues` answers the doctor's probe; `users` feeds the mapping of agents by e-mail.
"""

from __future__ import annotations

from collections.abc import Callable

from gisgate.connectors._http import Api, secret
from gisgate.connectors.windows import Window

MAX_PAGES = 1000


class LinkLive:
    windowed = True

    def __init__(self, spec, sleep: Callable[[float], bool] | None = None):
        self.spec = spec
        key = secret(spec, "api_key")
        self._auth = {"Authorization": key if key.startswith("ApiKey ") else f"ApiKey {key}"}
        self.api = Api(spec, [key], sleep)
        self.whats = list(spec.fetch)

    def _time(self, at: int) -> int:
        return at * 1000 if self.spec.time_unit == "ms" else at

    def fetch(self, what: str, window: Window) -> list[tuple[bytes, str]]:
        """The answers for `what` over `window`, as returned (one per page)."""
        params = {self.spec.from_param: self._time(window.start), self.spec.to_param: self._time(window.end)}
        pages: list[tuple[bytes, str]] = []
        while len(pages) < MAX_PAGES:
            response = self.api.call("GET", f"/{what}", f"GET {what}", params=params, headers=self._auth)
            body = self.api.json(response, f"GET {what}")
            if not (isinstance(body, list) or (isinstance(body, dict) and what in body)):
                raise self.api.error(f"GET {what}", f"the answer holds no {what!r} list", transient=False)
            pages.append((response.content, "json"))
            token = body.get("nextPageToken") if isinstance(body, dict) else None
            if not token:
                return pages
            self.api.learn(str(token))
            params = {**params, "pageToken": token}
        raise self.api.error(f"GET {what}", f"more than {MAX_PAGES} pages for one window; lower max_window")

    def listing(self, what: str) -> list[dict]:
        """`users` or `queues`: the organization's list."""
        body = self.api.json(self.api.call("GET", f"/{what}", f"GET {what}", headers=self._auth), f"GET {what}")
        items = body.get(what, []) if isinstance(body, dict) else body
        return items if isinstance(items, list) else []

    def users(self) -> list[dict]:
        """The organization's users (id, e-mail, ...), for mapping agents by e-mail."""
        return self.listing("users")

    def probe(self) -> str:
        queues = self.listing("queues")
        return f"linklive source {self.spec.name!r}: {self.spec.base_url} answered, API key accepted, " \
               f"{len(queues)} queue(s)"

    def close(self) -> None:
        self.api.close()
