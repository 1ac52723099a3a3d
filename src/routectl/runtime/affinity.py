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


_INV_TWO_64 = 1.0 / float(1 << 64)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_seed_lists: dict[int, tuple[Sequence[str], list[int]]] = {}  # id(keys) -> (keys, their seeds)


def _seeds_of(keys: Sequence[str]) -> list[int]:
    """The members' seeds, remembered per keys list (a pool's list keeps its identity)."""
    found = _seed_lists.get(id(keys))
    if found is not None and found[0] is keys:
        return found[1]
    seeds = [_seed(k) for k in keys]
    if len(_seed_lists) >= _MAX_SEEDS:
        _seed_lists.clear()
    _seed_lists[id(keys)] = (keys, seeds)
    return seeds


def _scores(h: int, keys: Sequence[str], weights: Sequence[float]) -> list[float]:
    out = []
    log = math.log
    for seed, w in zip(_seeds_of(keys), weights, strict=True):
        # splitmix64's finalizer, inlined (this runs for every member of every keyed request)
        x = h ^ seed
        x = ((x ^ (x >> 30)) * _M1) & _MASK
        x = ((x ^ (x >> 27)) * _M2) & _MASK
        x ^= x >> 31
        # u in (0, 1): never 0 (log) nor 1 (division); -ln(u) > 0
        out.append(w / -log((x + 0.5) * _INV_TWO_64))
    return out


def rendezvous_order(h: int, keys: Sequence[str], weights: Sequence[float]) -> list[int]:
    """Indices of the members by the key's preference, highest score first (ties: member order)."""
    scores = _scores(h, keys, weights)
    return sorted(range(len(keys)), key=lambda i: -scores[i])


def rendezvous_pick(h: int, keys: Sequence[str], weights: Sequence[float]) -> int:
    """The index of the member the key goes to: the highest score (ties: member order)."""
    scores = _scores(h, keys, weights)
    return scores.index(max(scores))


_MAX_PICKS = 65_536
# (id of a pool's keys list, key hash) -> (that list, the member index): a conversation sends many
# requests with one key over the same eligible set (the planner keeps one Pool object per set)
_picks: dict[tuple[int, int], tuple[Sequence[str], int]] = {}


def _pick(pool: Pool, h: int) -> int:
    keys = pool.keys
    found = _picks.get((id(keys), h))
    if found is not None and found[0] is keys:
        return found[1]
    pick = rendezvous_pick(h, keys, pool.weights)
    if len(_picks) >= _MAX_PICKS:
        _picks.clear()
    _picks[(id(keys), h)] = (keys, pick)
    return pick


def affinity_selection(pool: Pool, selection: Selection, h: int) -> Selection:
    """The strategy's selection with the key's member first (the strategy's order behind it)."""
    pick = _pick(pool, h)
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
    if key is None:
        return facts
    # the constructor, not dataclasses.replace: a third of the cost, once per keyed request
    return type(facts)(
        facts.prompt_tokens,
        facts.needs_tools,
        facts.needs_vision,
        facts.max_output_tokens,
        key_hash(key),
    )
