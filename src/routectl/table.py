"""The frozen routing table: the one contract between the compiler and the runtime.

Stdlib and orjson only, so a runtime container never needs the compiler's dependencies.
Everything that can be decided before a request arrives is decided by the compiler and stored
here: normalized weights, member order, per-model connection lists, the alias map, key digests.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from routectl.errors import TableError
from routectl.gcpause import gc_paused
from routectl.table_integrity import integrity_problems

__all__ = [
    "API_NAMES",
    "DEFAULT_TABLE_PATH",
    "MODEL_KINDS",
    "STRATEGY_NAMES",
    "TABLE_FORMAT",
    "Api",
    "Collection",
    "Connection",
    "Defaults",
    "FailMode",
    "Limit",
    "Limits",
    "Member",
    "Model",
    "ModelKind",
    "Organization",
    "Provider",
    "RoutingTable",
    "StrategyName",
    "TableError",
    "User",
    "defaults_to_dict",
    "dump_table",
    "load_table",
    "load_table_bytes",
    "table_from_dict",
    "table_to_dict",
]

TABLE_FORMAT = 1

# Where `routectl compile` writes the table and `routectl serve` (and the review tools) read it.
DEFAULT_TABLE_PATH = "generated/routing_table.json"
# The largest table file read (a 10,000-collection table is about 40 MB)
MAX_TABLE_BYTES = 512 * 1024 * 1024

OwnerKind = Literal["user", "organization", "platform"]
# What a model answers: chat (chat completions, messages, responses) or embeddings. A table
# written before kinds existed has none: every model is `chat` there, and a chat model's entry
# omits the key, so such tables keep their bytes and hash.
ModelKind = Literal["chat", "embedding"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)
Scope = Literal["system", "organization", "user"]
# The one list of upstream API dialects: the authoring model, the table and the runtime's dialect
# registry derive from it (a test ties the registry to it).
Api = Literal["openai", "anthropic", "echo"]
API_NAMES: tuple[str, ...] = get_args(Api)
# The one list of strategy names as routing.yaml writes them (`fallback` is an alias of
# `priority` that `_routing_strategy` echoes as written); the runtime's registry has one entry each.
StrategyName = Literal[
    "round_robin",
    "random",
    "weighted",
    "priority",
    "fallback",
    "least_used",
    "cost_optimized",
    "latency_optimized",
]
STRATEGY_NAMES: tuple[str, ...] = get_args(StrategyName)
# What a limit does when its shared store (Redis) cannot answer: admit (open) or refuse (closed).
FailMode = Literal["open", "closed"]


_MAX_COOLDOWN_DEFAULT = 3600.0


@dataclass(frozen=True, slots=True)
class Defaults:
    cooldown_s: float = 30.0
    timeout_ms: int = 60000
    max_attempts: int = 3
    fallback_on: tuple[str, ...] = ("429", "500", "502", "503", "504", "timeout", "connect_error")
    allowed_fails: int = 3
    priority_user: int = 100
    priority_organization: int = 50
    priority_platform: int = 0
    # the longest cooldown a Retry-After may open. It joined the table after its first release:
    # written only when it differs from the default, so every table compiled before it keeps its
    # bytes and hash (and its absence reads as the default)
    max_cooldown_s: float = _MAX_COOLDOWN_DEFAULT


@dataclass(frozen=True, slots=True)
class Organization:
    handle: str
    display_name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class User:
    handle: str
    display_name: str
    # organizations this user belongs to, sorted; derived from organizations.*.members
    organizations: tuple[str, ...]
    api_keys: tuple[str, ...]  # "sha256:<hex>" digests


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    api: Api
    base_url: str | None


@dataclass(frozen=True, slots=True)
class Model:
    id: str  # "provider/model-name"
    provider: str
    name: str  # the part after "provider/"
    context_window: int | None
    max_output_tokens: int | None
    input_per_mtok: float
    output_per_mtok: float
    capabilities: tuple[str, ...]
    trust_level: int
    free: bool
    kind: ModelKind = "chat"

    @property
    def cost(self) -> float:
        """The cost key used by cost_optimized and least_used tie-breaks."""
        return self.input_per_mtok + self.output_per_mtok


@dataclass(frozen=True, slots=True)
class Connection:
    id: str
    owner: str  # user handle, org handle, or "platform"
    owner_kind: OwnerKind
    provider: str
    api: Api
    base_url: str | None  # resolved: the connection's own, else its provider's
    api_key_env: str | None  # the env var NAME; the secret itself never enters the table
    priority: int  # resolved: explicit, else the owner kind's default
    models: tuple[str, ...]
    # resolved for every model of the connection: the name the upstream knows
    upstream_names: dict[str, str]


@dataclass(frozen=True, slots=True)
class Member:
    model: str  # as written: "provider/model" or "handle/provider/model"
    model_id: str  # "provider/model"
    handle: str | None  # set when the member pins a handle's connections
    weight: float  # as written (0.001-1.0)
    normalized_weight: float  # weight / sum of the active members' weights; 0 when inactive
    priority: int
    tags: tuple[str, ...]
    active: bool
    declared_index: int  # position in routing.yaml


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    display_name: str
    description: str
    scope: Scope
    owner: str | None
    strategy: str  # as written: "fallback" stays "fallback"
    aliases: tuple[str, ...]
    # ordered by priority descending, then declared order: the order strategies walk
    members: tuple[Member, ...]
    fallback_on: tuple[str, ...]  # resolved against defaults
    max_attempts: int
    timeout_ms: int
    metadata: dict[str, Any] = field(default_factory=dict)
    # session affinity: where the key comes from ("header:x-session-id", "user", "metadata.user_id")
    affinity: str | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    """The limits of one user, organization or collection; None: not limited on that measure."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    usd_per_day: float | None = None
    usd_per_month: float | None = None
    fail: FailMode = "open"


@dataclass(frozen=True, slots=True)
class Limits:
    """routing.yaml's `limits`: per user, per organization (every member's requests together)
    and per collection (every caller's requests to it together)."""

    users: dict[str, Limit] = field(default_factory=dict)
    organizations: dict[str, Limit] = field(default_factory=dict)
    collections: dict[str, Limit] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.users or self.organizations or self.collections)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    format: int
    defaults: Defaults
    organizations: dict[str, Organization]
    users: dict[str, User]
    providers: dict[str, Provider]
    models: dict[str, Model]
    connections: dict[str, Connection]
    # model id -> connection ids serving it, priority descending then id: the fallback order
    model_connections: dict[str, tuple[str, ...]]
    collections: dict[str, Collection]
    aliases: dict[str, str]  # exact name (alias or system collection name) -> collection name
    api_keys: dict[str, str]  # "sha256:<hex>" -> user handle
    sha256: str = ""
    limits: Limits = field(default_factory=Limits)


# ---------------------------------------------------------------- to / from plain data


def defaults_to_dict(d: Defaults) -> dict[str, Any]:
    """The table's `defaults` as plain data (its JSON, and the database's `routing.defaults`)."""
    out = _defaults_dict(d)
    if d.max_cooldown_s != _MAX_COOLDOWN_DEFAULT:
        out["max_cooldown_s"] = d.max_cooldown_s
    return out


def _defaults_dict(d: Defaults) -> dict[str, Any]:
    return {
        "allowed_fails": d.allowed_fails,
        "cooldown_s": d.cooldown_s,
        "fallback_on": list(d.fallback_on),
        "max_attempts": d.max_attempts,
        "priority": {
            "organization": d.priority_organization,
            "platform": d.priority_platform,
            "user": d.priority_user,
        },
        "timeout_ms": d.timeout_ms,
    }


_LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "usd_per_day", "usd_per_month")
_LIMIT_GROUPS = ("users", "organizations", "collections")


def _limit_to_dict(limit: Limit) -> dict[str, Any]:
    return {**{f: getattr(limit, f) for f in _LIMIT_FIELDS}, "fail": limit.fail}


def _limits_to_dict(limits: Limits) -> dict[str, Any]:
    return {
        group: {name: _limit_to_dict(lim) for name, lim in getattr(limits, group).items()}
        for group in _LIMIT_GROUPS
    }


def _limits_from_dict(data: dict[str, Any] | None) -> Limits:
    if not data:
        return Limits()
    groups = {
        group: {
            name: Limit(
                requests_per_minute=_int_or_none(raw["requests_per_minute"]),
                tokens_per_minute=_int_or_none(raw["tokens_per_minute"]),
                usd_per_day=_float_or_none(raw["usd_per_day"]),
                usd_per_month=_float_or_none(raw["usd_per_month"]),
                fail="closed" if raw["fail"] == "closed" else "open",
            )
            for name, raw in data[group].items()
        }
        for group in _LIMIT_GROUPS
    }
    return Limits(**groups)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def table_to_dict(table: RoutingTable) -> dict[str, Any]:
    """Plain JSON-ready data of a table, without its sha256."""
    data = _table_to_dict(table)
    # only when some are set: a table without limits is byte for byte what it was before them
    if table.limits:
        data["limits"] = _limits_to_dict(table.limits)
    return data


def _table_to_dict(table: RoutingTable) -> dict[str, Any]:
    return {
        "format": table.format,
        "defaults": defaults_to_dict(table.defaults),
        "organizations": {
            h: {"display_name": o.display_name, "members": list(o.members)}
            for h, o in table.organizations.items()
        },
        "users": {
            h: {
                "display_name": u.display_name,
                "organizations": list(u.organizations),
                "api_keys": list(u.api_keys),
            }
            for h, u in table.users.items()
        },
        "providers": {
            n: {"api": p.api, "base_url": p.base_url} for n, p in table.providers.items()
        },
        "models": {i: _model_to_dict(m) for i, m in table.models.items()},
        "connections": {
            i: {
                "owner": c.owner,
                "owner_kind": c.owner_kind,
                "provider": c.provider,
                "api": c.api,
                "base_url": c.base_url,
                "api_key_env": c.api_key_env,
                "priority": c.priority,
                "models": list(c.models),
                "upstream_names": dict(c.upstream_names),
            }
            for i, c in table.connections.items()
        },
        "model_connections": {m: list(ids) for m, ids in table.model_connections.items()},
        "collections": {n: _collection_to_dict(c) for n, c in table.collections.items()},
        "aliases": dict(table.aliases),
        "api_keys": dict(table.api_keys),
    }


def _model_to_dict(m: Model) -> dict[str, Any]:
    data: dict[str, Any] = {
        "provider": m.provider,
        "name": m.name,
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "pricing": {
            "input_per_mtok": m.input_per_mtok,
            "output_per_mtok": m.output_per_mtok,
        },
        "capabilities": list(m.capabilities),
        "trust_level": m.trust_level,
        "free": m.free,
    }
    if m.kind != "chat":  # absent means chat: tables of chat models keep their bytes
        data["kind"] = m.kind
    return data


def _collection_to_dict(c: Collection) -> dict[str, Any]:
    data = _collection_fields(c)
    if c.affinity is not None:  # absent when unset: older tables stay byte for byte the same
        data["affinity"] = {"key": c.affinity}
    return data


def _collection_fields(c: Collection) -> dict[str, Any]:
    return {
        "display_name": c.display_name,
        "description": c.description,
        "scope": c.scope,
        "owner": c.owner,
        "strategy": c.strategy,
        "aliases": list(c.aliases),
        "members": [
            {
                "model": m.model,
                "model_id": m.model_id,
                "handle": m.handle,
                "weight": m.weight,
                "normalized_weight": m.normalized_weight,
                "priority": m.priority,
                "tags": list(m.tags),
                "active": m.active,
                "declared_index": m.declared_index,
            }
            for m in c.members
        ],
        "fallback_on": list(c.fallback_on),
        "max_attempts": c.max_attempts,
        "timeout_ms": c.timeout_ms,
        "metadata": c.metadata,
    }


def table_from_dict(data: dict[str, Any], sha256: str = "") -> RoutingTable:
    """Build a table from plain data (the inverse of table_to_dict)."""
    return _table_from_dict(data, sha256, consume=False)


class _Shared:
    """Equal strings and tuples built once: a 10,000-collection table repeats the same few model
    ids, handles and fallback lists tens of thousands of times."""

    __slots__ = ("strings", "tuples")

    def __init__(self) -> None:
        self.strings: dict[str | None, str | None] = {}
        self.tuples: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _table_from_dict(data: dict[str, Any], sha256: str, *, consume: bool) -> RoutingTable:
    # consume: `data` is ours (just parsed); each collection's plain data is dropped as soon as
    # its objects exist, so the parsed JSON and the built table never coexist whole
    try:
        d = data["defaults"]
        prio = d["priority"]
        defaults = Defaults(
            cooldown_s=float(d["cooldown_s"]),
            timeout_ms=int(d["timeout_ms"]),
            max_attempts=int(d["max_attempts"]),
            fallback_on=tuple(str(x) for x in d["fallback_on"]),
            allowed_fails=int(d["allowed_fails"]),
            priority_user=int(prio["user"]),
            priority_organization=int(prio["organization"]),
            priority_platform=int(prio["platform"]),
            max_cooldown_s=float(d.get("max_cooldown_s", _MAX_COOLDOWN_DEFAULT)),
        )
        shared = _Shared()
        raw_collections: dict[str, Any] = data["collections"]
        if consume:
            names = list(raw_collections)
            collections = {}
            for n in names:
                collections[n] = _collection_from_dict(n, raw_collections.pop(n), shared, True)
        else:
            collections = {
                n: _collection_from_dict(n, c, shared, False) for n, c in raw_collections.items()
            }
        return RoutingTable(
            format=int(data["format"]),
            defaults=defaults,
            organizations={
                h: Organization(h, o["display_name"], tuple(o["members"]))
                for h, o in data["organizations"].items()
            },
            users={
                h: User(h, u["display_name"], tuple(u["organizations"]), tuple(u["api_keys"]))
                for h, u in data["users"].items()
            },
            providers={
                n: Provider(n, p["api"], p["base_url"]) for n, p in data["providers"].items()
            },
            models={
                i: Model(
                    id=i,
                    provider=m["provider"],
                    name=m["name"],
                    context_window=m["context_window"],
                    max_output_tokens=m["max_output_tokens"],
                    input_per_mtok=float(m["pricing"]["input_per_mtok"]),
                    output_per_mtok=float(m["pricing"]["output_per_mtok"]),
                    capabilities=tuple(m["capabilities"]),
                    trust_level=int(m["trust_level"]),
                    free=bool(m["free"]),
                    kind=_model_kind(m.get("kind", "chat")),
                )
                for i, m in data["models"].items()
            },
            connections={
                i: Connection(
                    id=i,
                    owner=c["owner"],
                    owner_kind=c["owner_kind"],
                    provider=c["provider"],
                    api=c["api"],
                    base_url=c["base_url"],
                    api_key_env=c["api_key_env"],
                    priority=int(c["priority"]),
                    models=tuple(c["models"]),
                    upstream_names=dict(c["upstream_names"]),
                )
                for i, c in data["connections"].items()
            },
            model_connections={m: tuple(ids) for m, ids in data["model_connections"].items()},
            collections=collections,
            aliases=dict(data["aliases"]),
            api_keys=dict(data["api_keys"]),
            sha256=sha256,
            limits=_limits_from_dict(data.get("limits")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TableError(f"malformed routing table: {exc!r}") from exc


def _model_kind(value: Any) -> ModelKind:
    if value not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {value!r}")
    return value  # type: ignore[no-any-return]


# The hot loop of a large table's load builds Members and Collections by setting their slots
# directly: the frozen dataclasses' __init__ goes through object.__setattr__ by name for every
# field, which is most of a 10,000-collection load. The objects are the same (no __post_init__).
_new = object.__new__
_MEMBER_SLOTS = tuple(getattr(Member, f.name).__set__ for f in fields(Member))
_COLLECTION_SLOTS = tuple(getattr(Collection, f.name).__set__ for f in fields(Collection))


def _members_from_dicts(raw: list[dict[str, Any]], shared: _Shared) -> tuple[Member, ...]:
    s = shared.strings.setdefault
    t = shared.tuples.setdefault
    s_model, s_id, s_handle, s_w, s_nw, s_prio, s_tags, s_active, s_index = _MEMBER_SLOTS
    out = []
    for m in raw:
        o = _new(Member)
        s_model(o, s(m["model"], m["model"]))
        s_id(o, s(m["model_id"], m["model_id"]))
        s_handle(o, s(m["handle"], m["handle"]))
        s_w(o, float(m["weight"]))
        s_nw(o, float(m["normalized_weight"]))
        s_prio(o, int(m["priority"]))
        tags = tuple(m["tags"])
        s_tags(o, t(tags, tags))
        s_active(o, bool(m["active"]))
        s_index(o, int(m["declared_index"]))
        out.append(o)
    return tuple(out)


def _collection_from_dict(
    name: str, c: dict[str, Any], shared: _Shared, consume: bool
) -> Collection:
    s = shared.strings.setdefault
    t = shared.tuples.setdefault
    (
        s_name,
        s_display,
        s_description,
        s_scope,
        s_owner,
        s_strategy,
        s_aliases,
        s_members,
        s_fallback,
        s_attempts,
        s_timeout,
        s_metadata,
        s_affinity,
    ) = _COLLECTION_SLOTS
    o = _new(Collection)
    s_name(o, name)
    s_display(o, c["display_name"])
    s_description(o, c["description"])
    s_scope(o, s(c["scope"], c["scope"]))
    s_owner(o, s(c["owner"], c["owner"]))
    s_strategy(o, s(c["strategy"], c["strategy"]))
    aliases = tuple(c["aliases"])
    s_aliases(o, t(aliases, aliases))
    s_members(o, _members_from_dicts(c["members"], shared))
    fallback_on = tuple([str(x) for x in c["fallback_on"]])
    s_fallback(o, t(fallback_on, fallback_on))
    s_attempts(o, int(c["max_attempts"]))
    s_timeout(o, int(c["timeout_ms"]))
    metadata = c["metadata"]
    s_metadata(o, metadata if consume and type(metadata) is dict else dict(metadata))
    affinity = c.get("affinity")
    s_affinity(o, affinity["key"] if affinity is not None else None)
    return o


# ---------------------------------------------------------------- canonical bytes and hash

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


def _canonical(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=_CANONICAL) + b"\n"


def content_hash(data: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the table's content (everything but `sha256`)."""
    body = {k: v for k, v in data.items() if k != "sha256"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def dump_table(table: RoutingTable) -> tuple[bytes, str]:
    """Canonical bytes of the table with its own hash inside, and that hash."""
    data = table_to_dict(table)
    digest = content_hash(data)
    data["sha256"] = digest
    return _canonical(data), digest


def load_table_bytes(raw: bytes) -> RoutingTable:
    """Parse table bytes, verify the recorded sha256 against the content, and build the table."""
    with gc_paused():
        return _verified(_parsed(raw))


def _parsed(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TableError(f"routing table is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TableError("routing table must be a JSON object")
    return data


def _verified(data: dict[str, Any]) -> RoutingTable:
    recorded = data.get("sha256")
    if not isinstance(recorded, str):
        raise TableError("routing table has no sha256; was it produced by `routectl compile`?")
    actual = content_hash(data)
    if actual != recorded:
        raise TableError(
            f"routing table hash mismatch: recorded {recorded}, content is {actual}; "
            "the file was edited by hand — recompile it with `routectl compile`"
        )
    if data.get("format") != TABLE_FORMAT:
        raise TableError(f"unsupported routing table format {data.get('format')!r}")
    table = _table_from_dict(data, recorded, consume=True)
    problems = integrity_problems(table)
    if problems:
        raise TableError(
            "routing table is inconsistent (edited and re-hashed?): " + "; ".join(problems)
        )
    return table


def _read_bounded(path: str | Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_TABLE_BYTES (a FIFO, a device such as
    /dev/zero or an endless file would otherwise hang the reader)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO without a writer: no hang
    except OSError as exc:
        raise TableError(f"cannot read routing table {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TableError(f"routing table {path} is not a regular file")
        if info.st_size > MAX_TABLE_BYTES:
            raise TableError(f"routing table {path} is larger than {MAX_TABLE_BYTES} bytes")
        try:
            raw = fh.read(MAX_TABLE_BYTES + 1)
        except OSError as exc:
            raise TableError(f"cannot read routing table {path}: {exc.strerror}") from exc
    if len(raw) > MAX_TABLE_BYTES:  # it grew while being read
        raise TableError(f"routing table {path} is larger than {MAX_TABLE_BYTES} bytes")
    return raw


def load_table(path: str | Path) -> RoutingTable:
    """Load and verify generated/routing_table.json."""
    raw = _read_bounded(path)
    with gc_paused():
        data = _parsed(raw)
        del raw  # the file's bytes are not needed once parsed: lower the load's peak memory
        return _verified(data)
