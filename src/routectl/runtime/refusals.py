"""The answer to a request that has no candidate at all, chosen by why nothing is left. Pure.

| why | answer | retry |
|---|---|---|
| every active member of a collection is one the caller may use no connection for | 403 `access_denied` | no |
| some member is too small for the prompt, and no member waits out a cooldown | 400 `context_length_exceeded` | no |
| some member waits out a cooldown | 503 `collection_no_models` / `model_unavailable` | yes, `Retry-After` = its soonest end |
| anything else (inactive, credentials not set) | the same 503 | no |

And when every attempt failed (`exhausted`): all of them rate limited upstream -> 429
`rate_limited` with `Retry-After` = the soonest end of the cooldowns they opened; else 502
`upstream_error` with `x-should-retry: false`, because routectl has already retried over its
candidates (up to `max_attempts`) and a client's retries would multiply the load on a failing
upstream.

A retry cannot help the first two and the last: the SDKs would otherwise retry every 503 twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routectl.runtime.errors import RoutingError
from routectl.runtime.retry import SHOULD_RETRY, retry_after_value

if TYPE_CHECKING:
    from routectl.runtime.plan import RoutePlan
    from routectl.runtime.state import RoutingState

__all__ = ["exhausted", "no_candidates"]

_NO_RETRY = {SHOULD_RETRY: "false"}


def _where(plan: RoutePlan) -> str:
    route = plan.route
    if route.collection is not None:
        return f"in {route.collection.name} collection"
    return "for this load_balancer request"


def no_candidates(plan: RoutePlan) -> RoutingError:
    """The error for a plan with no candidate."""
    route = plan.route
    reasons = list(plan.excluded)
    collection = route.kind in ("collection", "load_balancer")
    if plan.denied and collection:
        return RoutingError(
            "access_denied",
            403,
            # the auto-free seed's wording
            "Your organization does not have access to any models in this collection",
            {"details": {"reasons": reasons}},
            headers=_NO_RETRY,
        )
    if plan.too_large and plan.retry_after is None:
        too_small = [why for why in reasons if ": context window " in why]
        target = f"every model {_where(plan)}" if collection else f"'{route.requested}'"
        # the code in the text too: clients (LangChain, litellm) look for it or for OpenAI's
        # "maximum context length" in the message, which is all some SDK versions show
        return RoutingError(
            "context_length_exceeded",
            400,
            f"This request exceeds the maximum context length of {target} "
            "(context_length_exceeded): "
            + "; ".join(why.partition(": ")[2] for why in too_small)
            + ". Reduce the length of the messages or of max_tokens.",
            {"details": {"reasons": reasons}},
            headers=_NO_RETRY,
            param="messages",
        )
    if plan.retry_after is not None:
        headers = {"Retry-After": retry_after_value(plan.retry_after), SHOULD_RETRY: "true"}
    else:
        headers = _NO_RETRY
    details: dict[str, Any]
    if collection:
        details = {
            "total_members": plan.total_members,
            "available_models": 0,
            "reasons": reasons,
        }
        return RoutingError(
            "collection_no_models",
            503,
            f"No models available {_where(plan)}",
            {"details": details},
            headers=headers,
        )
    return RoutingError(
        "model_unavailable",
        503,
        f"No connection for '{route.requested}' is available now",
        {"details": {"reasons": reasons}},
        headers=headers,
    )


def exhausted(
    attempts: list[dict[str, Any]], state: RoutingState, auth_failures: int = 0
) -> RoutingError:
    """The error when every candidate was tried and failed (`attempts` as booked;
    `auth_failures` of them refused the gateway's credentials)."""
    if auth_failures and auth_failures == len(attempts):
        # no retry helps until the operator fixes the key (the connection is unavailable now)
        return RoutingError(
            "upstream_auth_error",
            502,
            "The upstream refused the gateway's credentials for this model; "
            "the operator has been told (the connection is marked unavailable)",
            {"attempts": attempts},
            headers=_NO_RETRY,
        )
    if attempts and all(a.get("status") == 429 for a in attempts):
        now = state.clock()
        ends = [
            cd.until
            for a in attempts
            if (cd := state.cooldown_of(a["connection"], a["model"], now)) is not None
        ]
        headers = {SHOULD_RETRY: "true"}
        if ends:
            headers["Retry-After"] = retry_after_value(min(ends) - now)
        return RoutingError(
            "rate_limited",
            429,
            f"Every candidate is rate limited upstream ({len(attempts)} attempts)",
            {"attempts": attempts},
            headers=headers,
        )
    return RoutingError(
        "upstream_error",
        502,
        f"Every candidate failed ({len(attempts)} attempts)",
        {"attempts": attempts},
        headers=_NO_RETRY,
    )
