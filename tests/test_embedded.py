"""The embedded PostgreSQL opens no private directory (issue: run as root, the wheel gave
o+rx to every parent of its data directory, which made /root listable by every user)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from mmo_core.errors import ConfigurationError
from mmo_host import config, database


def test_a_data_directory_behind_a_private_one_is_refused_and_nothing_is_opened():
    import tempfile

    # pytest's tmp_path lies under a private directory itself: start from a public one
    tmp_path = Path(tempfile.mkdtemp(prefix="mmo-reach-"))
    tmp_path.chmod(0o755)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    before = stat.S_IMODE(private.stat().st_mode)
    with pytest.raises(ConfigurationError, match="cannot enter"):
        database._check_reachable(private / "mmo")
    assert stat.S_IMODE(private.stat().st_mode) == before == 0o700
    assert not (private / "mmo").exists()
    public = tmp_path / "public"
    public.mkdir(mode=0o755)
    database._check_reachable(public / "mmo")  # reachable: no error
    import shutil

    shutil.rmtree(tmp_path)


def test_root_keeps_its_data_under_var_lib(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert config.default_data_dir() == Path("/var/lib/mmo")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", "/home/someone/.local/share")
    assert config.default_data_dir() == Path("/home/someone/.local/share/mmo")


def test_the_suites_server_left_home_private(postgres_dsn):
    """The suite's own embedded server (run as root in CI) changed no permission of the
    home directory or of the directories above the test's data."""
    home = Path.home()
    if os.geteuid() == 0:
        assert not stat.S_IMODE(home.stat().st_mode) & 0o007, oct(home.stat().st_mode)
    assert postgres_dsn
