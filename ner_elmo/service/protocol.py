"""
uvicorn's HTTP/1.1 protocol (h11) with a deadline for a request's headers.

uvicorn closes a connection that stays idle after a response (`timeout_keep_alive`), but not one
that never sends a request, or sends half its headers and stops: each holds a slot of
`limit_concurrency` for as long as its client likes, so a few hundred idle sockets lock every
user out. `HeaderTimeoutProtocol` closes a connection whose request headers are not complete
`header_timeout` seconds after it opened, or after its previous response. (A body that stalls
is the app's to time out: it answers 408.)
"""
import asyncio
from typing import Optional

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """`H11Protocol` with a deadline for each request's headers (a class attribute: uvicorn builds the protocol)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: Optional[asyncio.TimerHandle] = None
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        # A request under way (headers in, body or answer pending) is the app's to time out.
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def with_header_timeout(seconds: float) -> type:
    """A `HeaderTimeoutProtocol` class whose deadline is `seconds` (for `uvicorn.Config(http=...)`)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(seconds)})
