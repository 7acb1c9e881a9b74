"""What every vendor's HTTP client shares: the timeouts an account's secret may set, and transport
failures (timeouts, dropped connections) turned into the step error the state machine retries."""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
from pydantic import BaseModel, Field

from jobrelay.domain.errors import VendorTransientError


class HttpTimeouts(BaseModel):
    """Mixed into an account model: every call has explicit timeouts (a vendor that hangs must not
    eat the step's whole Lambda budget). A vendor may raise the read default (large uploads)."""

    connect_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    read_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0  # also the write timeout

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_seconds,
            read=self.read_timeout_seconds,
            write=self.read_timeout_seconds,
            pool=self.connect_timeout_seconds,
        )


@contextmanager
def transport_errors_as_transient(what: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise VendorTransientError(f"{what} timed out ({type(exc).__name__})", vendor_answered=False) from exc
    except httpx.TransportError as exc:
        raise VendorTransientError(f"{what} failed: {type(exc).__name__}", vendor_answered=False) from exc


@functools.cache
def shared_http_client() -> httpx.Client:
    """One connection pool per Lambda container for every vendor, reused across invocations.
    Timeouts are given on every call; redirects are never followed (an answer we did not ask for is
    not one we read, and a result link is checked before it is fetched)."""
    return httpx.Client(follow_redirects=False)
