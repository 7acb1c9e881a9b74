"""A slot of a per-account concurrency pool, as the Slots port hands it out."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Lease:
    """One slot of a pool (a vendor account), held by one job until it ends or `expires_at`."""

    pool: str
    holder: str
    expires_at: datetime
