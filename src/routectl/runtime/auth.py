"""Who is calling: a bearer key's SHA-256 names a user; the user's organizations follow. Pure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routectl.runtime.index import TableIndex

__all__ = ["Caller", "authenticate", "key_digest"]

# authenticated keys remembered per table (one sha256 per key, not per request): bounded, since
# the number of distinct valid keys is the table's, but a table may hold many
_MAX_REMEMBERED_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated user: its handle, its organizations, and every owner whose connections it may use."""

    handle: str
    organizations: tuple[str, ...]
    owners: frozenset[str]  # {handle, *organizations, "platform"}

    @property
    def scope(self) -> str:
        """The caller's scope as reported in `access_denied` (`user_scope`)."""
        return "organization" if self.organizations else "individual"


def key_digest(bearer_key: str) -> str:
    """`sha256:<hex>` of a key, as `users.*.api_keys` stores it."""
    # surrogatepass: a header with bytes that are not UTF-8 is just an unknown key (401)
    return "sha256:" + hashlib.sha256(bearer_key.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate(index: TableIndex, bearer_key: str | None) -> Caller | None:
    """The caller whose key digest is `sha256(bearer_key)`, or None for a missing or unknown key."""
    if not bearer_key:
        return None
    remembered = index.callers_by_key
    caller = remembered.get(bearer_key)
    if caller is not None:
        return caller
    handle = index.table.api_keys.get(key_digest(bearer_key))
    if handle is None:
        return None  # unknown keys are not remembered: they would grow the cache unboundedly
    caller = index.callers.get(handle)
    if caller is not None and len(remembered) < _MAX_REMEMBERED_KEYS:
        remembered[bearer_key] = caller
    return caller
