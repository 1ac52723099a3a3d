"""Authoring models of routing.yaml (format version 1): the one source of the JSON Schema.

These models describe the file as people write it. They are validated strictly (no coercion of
"1" to 1) so that what they accept is what the generated JSON Schema accepts; the compiled,
resolved form lives in routectl.table.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from routectl import table
from routectl.table import Api, ModelKind, Scope, StrategyName

__all__ = [
    "AFFINITY_PATTERN",
    "ALIAS_PATTERN",
    "DIGEST_PATTERN",
    "ENV_PATTERN",
    "MEMBER_MODEL_PATTERN",
    "MODEL_ID_PATTERN",
    "NAME_PATTERN",
    "Affinity",
    "Collection",
    "Connection",
    "Credentials",
    "Defaults",
    "FallbackCondition",
    "Limit",
    "Limits",
    "Member",
    "ModelSpec",
    "Organization",
    "OwnerPriorities",
    "Pricing",
    "Provider",
    "RoutingConfig",
    "User",
]

# Handles, provider names, collection names, connection ids: lowercase, digits, ".", "-", "_".
# The first character is a letter or digit so names never look like paths ("..", ".hidden").
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
_NAME_BODY = r"[a-z0-9][a-z0-9._-]*"
# The upstream part of a model id keeps the upstream's spelling (case, ":" and "@" included)
# but never "/", so `handle/provider/model` stays unambiguous.
_MODEL_NAME_BODY = r"[A-Za-z0-9][A-Za-z0-9._:@+-]*"
MODEL_ID_PATTERN = rf"^{_NAME_BODY}/{_MODEL_NAME_BODY}$"
MEMBER_MODEL_PATTERN = rf"^({_NAME_BODY}/)?{_NAME_BODY}/{_MODEL_NAME_BODY}$"
# Aliases may carry parentheses: `auto(free)`.
ALIAS_PATTERN = r"^[a-z0-9][a-z0-9._()-]*$"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
URL_PATTERN = r"^https?://[^\s]+$"
# Where a collection's session-affinity key comes from: a request header, the calling user, or a
# key of the body's `metadata` object (Anthropic's `metadata.user_id`).
AFFINITY_PATTERN = r"^(user|header:[A-Za-z0-9_-]{1,100}|metadata\.[A-Za-z0-9_-]{1,100})$"


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=100)]
ModelId = Annotated[str, StringConstraints(pattern=MODEL_ID_PATTERN, max_length=201)]
MemberModel = Annotated[str, StringConstraints(pattern=MEMBER_MODEL_PATTERN, max_length=302)]
Alias = Annotated[str, StringConstraints(pattern=ALIAS_PATTERN, min_length=1, max_length=100)]
Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_PATTERN, max_length=200)]
Url = Annotated[str, StringConstraints(pattern=URL_PATTERN, max_length=2000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# absent: the handle or name; written: some text (an empty string would silently mean the default)
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Priority = Annotated[int, Field(ge=0, le=100)]
HttpStatus = Annotated[int, Field(ge=400, le=599)]
FallbackCondition = HttpStatus | Literal["timeout", "connect_error"]
Strategy = StrategyName


# The frozen table's Defaults is the one home of every default value; the authoring models
# only spell them the way routing.yaml does.
_TABLE_DEFAULTS = table.Defaults()


def _as_written(number: float) -> float:
    """30.0 as 30, as routing.yaml writes it (a float default would print `30.0` in the schema)."""
    return int(number) if number.is_integer() else number


def _default_fallback_on() -> list[FallbackCondition]:
    # the table keeps conditions as text ("429"); routing.yaml writes status codes as integers
    return [
        int(c) if c.isdigit() else cast(FallbackCondition, c) for c in _TABLE_DEFAULTS.fallback_on
    ]


class _Strict(BaseModel):
    # strict: YAML "1" is not the integer 1; extra=forbid: unknown keys are errors.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _NoNulls(_Strict):
    """A model with optional keys: absent is fine, an explicit null is not (as in the schema)."""

    @model_validator(mode="before")
    @classmethod
    def _reject_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None and key in cls.model_fields:
                    raise ValueError(f"'{key}' must not be null")
        return data


class OwnerPriorities(_Strict):
    """Default connection priority per owner kind."""

    user: Priority = _TABLE_DEFAULTS.priority_user
    organization: Priority = _TABLE_DEFAULTS.priority_organization
    platform: Priority = _TABLE_DEFAULTS.priority_platform


class Defaults(_Strict):
    """Settings every collection and connection inherits unless it overrides them."""

    priority: OwnerPriorities = OwnerPriorities()
    cooldown_s: Annotated[float, Field(ge=0, le=86400)] = _as_written(_TABLE_DEFAULTS.cooldown_s)
    timeout_ms: Annotated[int, Field(ge=1, le=3_600_000)] = _TABLE_DEFAULTS.timeout_ms
    max_attempts: Annotated[int, Field(ge=1, le=20)] = _TABLE_DEFAULTS.max_attempts
    fallback_on: list[FallbackCondition] = Field(default_factory=_default_fallback_on)
    allowed_fails: Annotated[int, Field(ge=1, le=1000)] = _TABLE_DEFAULTS.allowed_fails
    # the longest cooldown an upstream's Retry-After can open (a far-future one is capped)
    max_cooldown_s: Annotated[float, Field(ge=1, le=31_536_000)] = _as_written(
        _TABLE_DEFAULTS.max_cooldown_s
    )


class Organization(_NoNulls):
    """An organization: a handle whose members share its connections and collections."""

    display_name: DisplayName | None = None
    members: list[Name] = Field(default_factory=list)


class User(_NoNulls):
    """A user: a handle and the SHA-256 digests of its bearer keys."""

    display_name: DisplayName | None = None
    api_keys: list[Digest] = Field(default_factory=list)


class Provider(_NoNulls):
    """An upstream API dialect and its default base URL."""

    api: Api
    base_url: Url | None = None


class Pricing(_Strict):
    """Price per million tokens, in the account's currency."""

    input_per_mtok: Annotated[float, Field(ge=0)] = 0
    output_per_mtok: Annotated[float, Field(ge=0)] = 0


class ModelSpec(_NoNulls):
    """What routing needs to know about a model."""

    context_window: Annotated[int, Field(ge=1)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    pricing: Pricing = Pricing()
    capabilities: list[Tag] = Field(default_factory=list)
    trust_level: Annotated[int, Field(ge=0, le=100)] = 50
    free: bool = False
    kind: ModelKind = Field(
        default="chat",
        description="what the model answers: `chat` (chat completions, messages, responses) "
        "or `embedding` (/v1/embeddings)",
    )


class Credentials(_Strict):
    """Where a connection's key comes from: an environment variable's name, never the key."""

    api_key_env: EnvName


class Connection(_NoNulls):
    """An owner's access to a provider for some models."""

    id: Name
    owner: Name = Field(description="a user handle, an organization handle, or `platform`")
    provider: Name
    models: Annotated[list[ModelId], Field(min_length=1)]
    credentials: Credentials | None = None
    base_url: Url | None = None
    priority: Priority | None = None
    upstream_names: dict[ModelId, Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=dict
    )


class Member(_Strict):
    """A model in a collection."""

    model: MemberModel
    weight: Annotated[float, Field(ge=0.001, le=1.0)] = 0.5
    priority: Priority = 0
    tags: list[Tag] = Field(default_factory=list)
    active: bool = True


class Affinity(_Strict):
    """Session affinity: requests with the same key go to the same member (rendezvous hashing)."""

    key: Annotated[str, StringConstraints(pattern=AFFINITY_PATTERN)] = Field(
        description="`header:NAME` (a request header), `user` (the calling user) or "
        "`metadata.NAME` (a key of the request body's `metadata`, e.g. `metadata.user_id`)"
    )


class Collection(_NoNulls):
    """A named group of models with a routing strategy."""

    display_name: DisplayName | None = None
    description: str = ""
    scope: Scope
    owner: Name | None = None
    strategy: Strategy
    aliases: list[Alias] = Field(default_factory=list)
    members: Annotated[list[Member], Field(min_length=1)]
    fallback_on: list[FallbackCondition] | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] | None = None
    timeout_ms: Annotated[int, Field(ge=1, le=3_600_000)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    affinity: Affinity | None = None


class Limit(_NoNulls):
    """Limits of one user, organization or collection; at least one measure is set."""

    requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1, le=1_000_000_000_000)] | None = None
    usd_per_day: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    usd_per_month: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    fail: Literal["open", "closed"] = Field(
        default="open",
        description="when the shared store (serve --redis-url) cannot answer: `open` admits "
        "the request (counted in a metric), `closed` refuses it (503)",
    )


class Limits(_Strict):
    """Requests, tokens and spend per caller, enforced by `routectl serve`."""

    users: dict[Name, Limit] = Field(default_factory=dict)
    organizations: dict[Name, Limit] = Field(default_factory=dict)
    collections: dict[Name, Limit] = Field(default_factory=dict)


class RoutingConfig(_NoNulls):
    """routing.yaml, format version 1."""

    version: Literal[1]
    defaults: Defaults = Defaults()
    organizations: dict[Name, Organization] = Field(default_factory=dict)
    users: dict[Name, User] = Field(default_factory=dict)
    providers: dict[Name, Provider] = Field(default_factory=dict)
    models: dict[ModelId, ModelSpec] = Field(default_factory=dict)
    connections: list[Connection] = Field(default_factory=list)
    collections: dict[Name, Collection] = Field(default_factory=dict)
    limits: Limits = Limits()

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: Any) -> Any:
        # True == 1 == 1.0 in Python; the file must say the integer 1
        if isinstance(value, bool | float):
            raise ValueError("version must be the integer 1")
        return value
