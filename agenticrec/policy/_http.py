"""The HTTP client every LLM call goes through: one origin, one deadline.

Two defects of a plain client, each a way for an endpoint to misbehave:

* **Redirects to another origin.** The OpenAI client follows a ``307`` to
  any host and sends the whole prompt there, recording that host's answer as
  the configured model's. Every request, redirected ones included, passes
  :func:`_same_origin`; a request to another origin raises
  :class:`CrossOriginError` (the policy records it as the fallback reason).
  Redirects within the configured origin still work.
* **Slow drip.** httpx's read timeout is per read: a server that sends one
  byte a second never trips it, and a timed-out decision leaves its worker
  thread and connection alive. :class:`_DeadlineTransport` gives each request
  a total deadline (the context's ``llm_timeout_s``) checked at every body
  chunk, so a late call ends its own thread and closes its connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

__all__ = ["CrossOriginError", "DeadlineExceeded", "make_http_client"]


class CrossOriginError(httpx.TransportError):
    """A request (usually a redirect) to an origin other than the endpoint's."""


class DeadlineExceeded(httpx.ReadTimeout):
    """The whole request took longer than its deadline."""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class _DeadlineStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, deadline: float) -> None:
        self._stream, self._deadline = stream, deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if time.monotonic() > self._deadline:
                self.close()
                raise DeadlineExceeded("reply still arriving at its deadline")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self, total_s: float, **kw) -> None:
        super().__init__(**kw)
        self.total_s = total_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.total_s
        response = super().handle_request(request)
        response.stream = _DeadlineStream(response.stream, deadline)
        return response


def make_http_client(base_url: str, timeout_s: float) -> httpx.Client:
    """An httpx client bound to ``base_url``'s origin with a total deadline."""
    allowed = _origin(httpx.URL(base_url))

    def _same_origin(request: httpx.Request) -> None:
        if _origin(request.url) != allowed:
            raise CrossOriginError(
                f"refused a request to {request.url.scheme}://{request.url.host}"
                f"{':' + str(request.url.port) if request.url.port else ''} "
                f"(redirect away from the configured endpoint {base_url})"
            )

    return httpx.Client(
        transport=_DeadlineTransport(timeout_s),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=True,
        event_hooks={"request": [_same_origin]},
    )
