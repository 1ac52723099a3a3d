"""Every typed key of the runtime's aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from routectl.runtime.service import Runtime

__all__ = ["RUNTIME"]

RUNTIME: web.AppKey[Runtime] = web.AppKey("routectl_runtime")
