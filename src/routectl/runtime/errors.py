"""RoutingError: a request that cannot be routed, as the SPEC's error code, HTTP status and body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routectl.errors import RoutectlError

__all__ = ["RoutingError"]


class RoutingError(RoutectlError):
    """A request that cannot be routed: carries the SPEC's error code, HTTP status and extra fields."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        extra: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.extra: dict[str, Any] = dict(extra or {})
        # response headers the answer carries (Retry-After, rate-limit headers...), any format
        self.headers: dict[str, str] = dict(headers or {})
        # the request field at fault, when one is (OpenAI's `param`: "messages", "model"...)
        self.param = param

    def to_body(self) -> dict[str, Any]:
        """The error as the SPEC's `{"error": {"code", "message", ...}}` body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.extra)
        return {"error": error}
