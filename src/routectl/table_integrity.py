"""A loaded table checked for what its hash cannot promise: that it was written by the compiler.

The sha256 proves the bytes are unchanged since someone hashed them, and anyone can re-hash an
edited file. So every reference a request will follow must resolve (a member's model and handle,
a connection's provider, owner and models, the fallback lists, aliases, key digests), every name
the runtime dispatches on must be known (strategy, api, scope, owner kind), and every field must
have its type; otherwise the table is refused at load instead of answering 500 later. Linear in
the table's size (a 10,000-collection table: a few milliseconds).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routectl.table import RoutingTable

__all__ = ["integrity_problems"]

_SCOPES = frozenset(("system", "organization", "user"))
_OWNER_KINDS = frozenset(("user", "organization", "platform"))
_MAX_REPORTED = 20


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _opt_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)


def integrity_problems(table: RoutingTable) -> list[str]:
    """Every broken reference, unknown name or wrong type in `table` (at most 20), or []."""
    from routectl.table import API_NAMES, STRATEGY_NAMES

    out: list[str] = []

    def bad(problem: str) -> None:
        out.append(problem)

    d = table.defaults
    if not (_finite(d.cooldown_s) and _finite(d.max_cooldown_s) and d.max_cooldown_s > 0):
        bad("defaults: cooldown_s and max_cooldown_s must be finite numbers")
    if not all(_is_int(x) and x > 0 for x in (d.timeout_ms, d.max_attempts, d.allowed_fails)):
        bad("defaults: timeout_ms, max_attempts and allowed_fails must be positive integers")
    for name, p in table.providers.items():
        if p.api not in API_NAMES:
            bad(f"providers.{name}: unknown api {p.api!r}")
        if not _opt_str(p.base_url):
            bad(f"providers.{name}.base_url: not a string")
    for mid, model in table.models.items():
        if model.provider not in table.providers:
            bad(f"models.{mid}: unknown provider {model.provider!r}")
        if not (_finite(model.input_per_mtok) and _finite(model.output_per_mtok)):
            bad(f"models.{mid}.pricing: not finite numbers")
        for field in (model.context_window, model.max_output_tokens):
            if field is not None and not _is_int(field):
                bad(f"models.{mid}: context_window and max_output_tokens must be integers")
        if not all(_is_str(c) for c in model.capabilities):
            bad(f"models.{mid}.capabilities: not strings")
    owners = {"platform", *table.users, *table.organizations}
    for cid, c in table.connections.items():
        where = f"connections.{cid}"
        if c.api not in API_NAMES:
            bad(f"{where}: unknown api {c.api!r}")
        if c.owner_kind not in _OWNER_KINDS or c.owner not in owners:
            bad(f"{where}: unknown owner {c.owner!r}")
        if c.provider not in table.providers:
            bad(f"{where}: unknown provider {c.provider!r}")
        if not _opt_str(c.base_url):
            bad(f"{where}.base_url: not a string")
        if not _opt_str(c.api_key_env):
            bad(f"{where}.api_key_env: not a string")
        for mid in c.models:
            if mid not in table.models:
                bad(f"{where}: unknown model {mid!r}")
            elif not _is_str(c.upstream_names.get(mid)):
                bad(f"{where}.upstream_names: no name for {mid!r}")
    for mid, ids in table.model_connections.items():
        if mid not in table.models:
            bad(f"model_connections: unknown model {mid!r}")
        for cid in ids:
            conn = table.connections.get(cid)
            if conn is None or mid not in conn.models:
                bad(f"model_connections.{mid}: {cid!r} is no connection serving it")
    for name, col in table.collections.items():
        where = f"collections.{name}"
        if col.strategy not in STRATEGY_NAMES:
            bad(f"{where}: unknown strategy {col.strategy!r}")
        if col.scope not in _SCOPES:
            bad(f"{where}: unknown scope {col.scope!r}")
        elif col.scope != "system" and col.owner not in owners:
            bad(f"{where}: unknown owner {col.owner!r}")
        if not (_is_int(col.max_attempts) and col.max_attempts > 0 and _is_int(col.timeout_ms)):
            bad(f"{where}: max_attempts and timeout_ms must be positive integers")
        if not col.members:
            bad(f"{where}: no members")
        for i, member in enumerate(col.members):
            if member.model_id not in table.models:
                bad(f"{where}.members[{i}]: unknown model {member.model_id!r}")
            if member.handle is not None and member.handle not in owners:
                bad(f"{where}.members[{i}]: unknown handle {member.handle!r}")
            if not (_finite(member.weight) and _finite(member.normalized_weight)):
                bad(f"{where}.members[{i}]: weights must be finite numbers")
        if not isinstance(col.metadata, dict):
            bad(f"{where}.metadata: not an object")
        if len(out) > _MAX_REPORTED:
            break
    for alias, target in table.aliases.items():
        if target not in table.collections:
            bad(f"aliases.{alias}: unknown collection {target!r}")
    for digest, handle in table.api_keys.items():
        if handle not in table.users or not _is_str(digest):
            bad(f"api_keys: {digest[:15]}... names unknown user {handle!r}")
    return out[:_MAX_REPORTED]
