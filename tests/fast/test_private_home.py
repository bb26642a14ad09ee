"""The home holds index passwords, init scripts, env-var secrets and the session key: nobody
but the codenv user reads any of it."""

from __future__ import annotations

import stat
from pathlib import Path

from codenv.backends.fake import FakeInstaller
from codenv.domain.spec import EnvSpec
from codenv.services import envs
from codenv.services.actor import Actor
from fast.conftest import open_fake

SCRIPT = "from codenv_runtime.resources import set_env_var\nset_env_var('TOKEN', 'x')\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_home_left_open_is_made_private_at_start_up(
    tmp_path: Path, fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    home.chmod(0o755)
    (home / "config" / "server.json").write_text("{}")
    (home / "config" / "server.json").chmod(0o644)
    (home / "codenv.db").touch(mode=0o644)
    app = open_fake(home, fake)
    try:
        envs.create_env(app, admin, "demo", EnvSpec(python=newest, resources_init_script=SCRIPT))
        assert _mode(home) == 0o700
        assert _mode(home / "config" / "server.json") == 0o600
        assert _mode(home / "codenv.db") == 0o600
        written = [home / "envs" / "demo" / "resources_env.json", *(home / "builds").iterdir()]
        assert written and all(_mode(path) & 0o077 == 0 for path in written)
    finally:
        app.close()
