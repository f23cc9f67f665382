"""docs/deployment.md's image and compose file: simple, and true to the `mmo` they run.

Docker is not run here; the files are read: the compose file parses, has the services
docs/deployment.md names, and every command it runs is one `mmo --help` lists (with its
options); the Dockerfile builds in two stages with uv and runs `mmo serve` as a user.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from mmo_host.cli import build_parser

ROOT = Path(__file__).parents[1]


def subcommands() -> dict[str, set[str]]:
    """Each `mmo` subcommand with its options."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    found = {}
    for name, sub in action.choices.items():
        found[name] = {opt for a in sub._actions for opt in a.option_strings}
    return found


def test_the_compose_file_runs_the_whole_stack_with_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "host1", "host2", "worker"} <= set(services)
    known = subcommands()
    gateway = [name for name, s in services.items() if s.get("image") == "mmo-gateway"]
    assert {"migrate", "host1", "host2", "worker"} <= set(gateway)
    for name in gateway:
        command = services[name]["command"]
        assert command[0] == "mmo" and command[1] in known, (name, command)
        options = {part for part in command[2:] if part.startswith("--")}
        assert options <= known[command[1]], (name, options)
    assert services["migrate"]["command"][1] == "migrate"
    assert services["worker"]["command"][1] == "worker"
    for name in ("host1", "host2"):
        host = services[name]
        assert host["command"][1] == "serve"
        env = host["environment"]
        # stateless hosts on the shared database and Redis, the schema applied before them
        assert "@postgres:" in env["DATABASE_URL"] and "//redis:" in env["REDIS_URL"]
        assert env["MMO_AUTO_MIGRATE"] == "false" and env["MMO_RUN_WORKER"] == "false"
        assert host["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_image_builds_with_uv_and_runs_as_a_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M | re.I)
    assert len(stages) == 2 and stages[0][1] == "build"
    assert "uv sync --locked --no-dev" in text
    assert "COPY --from=build" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["mmo", "serve"\]', text, re.M)
    # what the image copies exists
    for path in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / path).exists(), path


def test_serve_takes_workers() -> None:
    assert "--workers" in subcommands()["serve"]
    args = build_parser().parse_args(["serve", "--workers", "3"])
    assert args.workers == 3
