"""The operations dashboard, served by the host at `/dashboard` (docs/admin.md, Dashboard).

`routes()` are its pages and its static files (`/dashboard/static`: uPlot and the page's
own script and style, shipped in the package: no CDN, no build step); `template_config()`
is the app's Jinja configuration, with the filters the templates use.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from mmo_host.dashboard.controller import DashboardController

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"


def routes() -> list[ControllerRouterHandler]:
    static: Router = create_static_files_router(
        path="/dashboard/static",
        directories=[STATIC],
        name="dashboard-static",
        include_in_schema=False,
    )
    return [DashboardController, static]


def when(value: dt.datetime | None) -> str:
    """A timestamp as people read it, in UTC to the second."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def pretty(value: Any) -> str:
    """JSON for a person (autoescaped by the template like any text)."""
    return json.dumps(value, indent=1, sort_keys=True, default=str, ensure_ascii=False)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(when=when, pretty=pretty, percent=percent)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_filters)


__all__ = ["DashboardController", "routes", "template_config"]
