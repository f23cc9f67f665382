"""Run third-party operator SDKs against a simulator, each in its own virtual environment.

Fidelity tests prove that code written for an operator's real sandbox works against our
simulator unchanged: an SDK from PyPI, with only its base URL pointed at the simulator,
must complete its flow. SDKs pin old `requests`/`urllib3` releases that must not leak into
the gateway's own environment, so each SDK gets an isolated venv made with `uv`, cached
under `.sdk-venvs/` at the workspace root (or `MMO_SDK_VENVS`) and reused across runs.

The script runs as a separate process and prints one JSON document on its last line of
standard output, which `run_sdk` decodes and returns.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


class SdkError(AssertionError):
    """The SDK could not be installed, or its script failed (output attached)."""


def _root() -> Path:
    configured = os.environ.get("MMO_SDK_VENVS")
    if configured:
        return Path(configured)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "uv.lock").exists():
            return folder / ".sdk-venvs"
    return here / ".sdk-venvs"


def sdk_python(*requirements: str, timeout: float = 300.0) -> Path:
    """The interpreter of a venv holding exactly `requirements` (created on first use)."""
    uv = shutil.which("uv")
    if uv is None:
        raise SdkError("uv is needed to install operator SDKs for the fidelity tests")
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    venv = _root() / digest
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.exists() and python.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_NO_SYNC")}
    steps = (
        [uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(python), *requirements],
    )
    for step in steps:
        done = subprocess.run(  # noqa: S603 - uv with our own arguments
            step, capture_output=True, text=True, timeout=timeout, env=env
        )
        if done.returncode != 0:
            raise SdkError(f"{' '.join(step[:3])} failed:\n{done.stdout}\n{done.stderr}")
    (venv / "requirements.txt").write_text("\n".join(requirements) + "\n")
    marker.touch()
    return python


def run_sdk(
    requirements: tuple[str, ...] | list[str],
    script: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Any:
    """Run `script` with the SDK's interpreter; return the JSON of its last output line."""
    python = sdk_python(*requirements)
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MMO_", "COV_", "COVERAGE_")) and k != "VIRTUAL_ENV"
    }
    clean.update(env or {})
    clean["NO_PROXY"] = "127.0.0.1,localhost"
    done = subprocess.run(  # noqa: S603 - the test's own script
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SdkError(
            f"the SDK script failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        raise SdkError(f"the SDK script printed no JSON result:\n{done.stdout}") from None


__all__ = ["SdkError", "run_sdk", "sdk_python"]
