"""Session affinity: weighted rendezvous (highest-random-weight) hashing of a session key over the
eligible members of a collection. Pure; the same key gives the same member in every process.

Provider prompt caches pay off only when a conversation keeps reaching the same deployment. For
each member the key draws a score `weight / -ln(u)`, with `u` in (0, 1) a hash of (key, member);
the highest score serves. That gives each member exactly its weight's share of the keys, needs no
shared state (every replica computes the same scores), and when a member leaves (removed, cooling
down, unfit for the request) only its own keys move, each to its next-highest member, and they
come back when it returns. The first candidate is the affinity's choice; the strategy's order
follows as the fallback.

The key itself never leaves the handler: the planner gets its 64-bit hash (`RequestFacts.
affinity_hash`), and answers show that hash as `_affinity_key_hash`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from routectl.runtime.strategies import Selection

if TYPE_CHECKING:
    from routectl.runtime.plan import RequestFacts
    from routectl.runtime.pool import Pool
    from routectl.runtime.routes import Route

__all__ = [
    "affinity_facts",
    "affinity_key",
    "affinity_selection",
    "hash_text",
    "key_hash",
    "rendezvous_order",
    "rendezvous_pick",
]

_MASK = (1 << 64) - 1
_TWO_64 = float(1 << 64)
_MAX_SEEDS = 100_000  # member keys remembered (a table's members; load balancers add more)
_seeds: dict[str, int] = {}


def key_hash(key: str) -> int:
    """The 64-bit hash of a session key (what the planner and `_affinity_key_hash` see)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def hash_text(h: int) -> str:
    """`_affinity_key_hash`: the key's hash as 16 hex digits."""
    return f"{h:016x}"


def _seed(member_key: str) -> int:
    seed = _seeds.get(member_key)
    if seed is None:
        if len(_seeds) >= _MAX_SEEDS:
            _seeds.clear()
        seed = _seeds[member_key] = key_hash("member:" + member_key)
    return seed


def _mix(x: int) -> int:
    """splitmix64's finalizer: every bit of (key ^ member) reaches every bit of the result."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _scores(h: int, keys: Sequence[str], weights: Sequence[float]) -> list[float]:
    # u in (0, 1): never 0 (log) nor 1 (division); -ln(u) > 0
    return [
        w / -math.log((_mix(h ^ _seed(k)) + 0.5) / _TWO_64)
        for k, w in zip(keys, weights, strict=True)
    ]


def rendezvous_order(h: int, keys: Sequence[str], weights: Sequence[float]) -> list[int]:
    """Indices of the members by the key's preference, highest score first (ties: member order)."""
    scores = _scores(h, keys, weights)
    return sorted(range(len(keys)), key=lambda i: -scores[i])


def rendezvous_pick(h: int, keys: Sequence[str], weights: Sequence[float]) -> int:
    """The index of the member the key goes to: the highest score (ties: member order)."""
    scores = _scores(h, keys, weights)
    return scores.index(max(scores))


def affinity_selection(pool: Pool, selection: Selection, h: int) -> Selection:
    """The strategy's selection with the key's member first (the strategy's order behind it)."""
    pick = rendezvous_pick(h, pool.keys, pool.weights)
    order = selection.order
    info = dict(selection.info)
    info["_affinity_key_hash"] = hash_text(h)
    first = order[0]
    if pick != first and "_usage_at_selection" in info and "_model_alternatives" in info:
        # least_used's fields, re-centred on the member that serves: its count at selection,
        # every other member (the strategy's own first choice included) as an alternative
        everyone = [
            {"model": pool.model_ids[first], "usage": info["_usage_at_selection"]},
            *info["_model_alternatives"],
        ]
        at = next(i for i, alt in enumerate(everyone) if alt["model"] == pool.model_ids[pick])
        info["_usage_at_selection"] = everyone.pop(at)["usage"]
        info["_model_alternatives"] = everyone
    return Selection((pick, *(i for i in order if i != pick)), info)


def affinity_key(
    spec: str, headers: Mapping[str, str], caller: str, body: Mapping[str, Any]
) -> str | None:
    """The session key a request carries for a collection's `affinity.key`, or None (then the
    strategy alone decides): `header:NAME`, `user` (the caller's handle) or `metadata.NAME`."""
    source, _, name = spec.partition(":")
    if source == "header":
        value: Any = headers.get(name)
    elif spec == "user":
        value = caller
    else:  # "metadata.NAME": the body's `metadata` object (OpenAI's and Anthropic's field)
        metadata = body.get("metadata")
        value = metadata.get(spec[9:]) if isinstance(metadata, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
    return value if isinstance(value, str) and value else None


def affinity_facts(
    route: Route,
    facts: RequestFacts,
    headers: Mapping[str, str],
    caller: str,
    body: Mapping[str, Any],
) -> RequestFacts:
    """The request's facts with its session key's hash when its collection has affinity."""
    coll = route.collection
    if coll is None or coll.affinity is None:
        return facts
    key = affinity_key(coll.affinity, headers, caller, body)
    return facts if key is None else replace(facts, affinity_hash=key_hash(key))
