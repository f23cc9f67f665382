"""What the `/api/v1/admin/mmo` controllers share: the path, the `admin` guard, the errors.

Each resource has its own controller (`admin_providers`, `admin_transactions`,
`admin_callbacks`, `admin_audit`; the attention list is `attention`). The older routes
under `/api/v1/admin/...` (controllers/admin.py, controllers/operations.py) stay as
documented aliases (docs/admin.md).
"""

from __future__ import annotations

from litestar import Controller
from mmo_core.errors import MmoError

from mmo_host.auth import requires
from mmo_host.controllers.operations import Conflict

ADMIN_PATH = "/api/v1/admin/mmo"


class NotFound(MmoError):
    """No such provider, transaction or callback."""

    code = "not_found"
    http_status = 404


class AdminMmoController(Controller):
    """The base of every `/api/v1/admin/mmo/...` controller."""

    tags = ["admin"]
    guards = [requires("admin")]
    security = [{"BearerToken": []}]


__all__ = ["ADMIN_PATH", "AdminMmoController", "Conflict", "NotFound"]
