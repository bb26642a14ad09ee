"""What a build's processes see of the server: nothing of its environment, no credentials on
a command line, and no credentials re-sent by the index probe across a redirect."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

import pytest

from codenv.backends.index_probe import refused_index
from codenv.backends.pip import pip_options
from codenv.backends.uv_options import translate
from codenv.domain.install_options import INSTALL_OPTIONS, parse_options
from codenv.domain.spec import EnvSpec
from codenv.services import builds, envs, logs
from codenv.services.actor import Actor
from codenv.services.app import Codenv

SECRET = "s3cr3t-index-password"
TOKENS = [
    f"--index-url=https://team:{SECRET}@index.example/simple",
    f"--extra-index-url=https://other:{SECRET}@extra.example/simple",
    f"--find-links=https://links:{SECRET}@files.example/wheels/",
    "--trusted-host=index.example",
    "--only-binary=:all:",
]
OPTIONS = parse_options(TOKENS, INSTALL_OPTIONS)


def test_uv_gets_every_location_through_its_environment() -> None:
    uv = translate(OPTIONS)
    assert SECRET not in " ".join(uv.args)
    assert uv.args == ("--only-binary", ":all:")
    assert uv.environ["UV_INDEX_URL"] == f"https://team:{SECRET}@index.example/simple"
    assert uv.environ["UV_EXTRA_INDEX_URL"].startswith("https://other:")
    assert uv.environ["UV_FIND_LINKS"].startswith("https://links:")
    assert uv.environ["UV_INSECURE_HOST"] == "index.example"


def test_pip_gets_every_location_through_its_environment() -> None:
    args, environ = pip_options(OPTIONS)
    assert SECRET not in " ".join(args)
    assert environ["PIP_INDEX_URL"].startswith("https://team:")
    assert environ["PIP_TRUSTED_HOST"] == "index.example"


def test_the_init_script_sees_nothing_of_the_servers_environment(
    app: Codenv, admin: Actor, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODENV_ADMIN_PASSWORD", "the-admin-password")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "an-aws-secret")
    script = (
        "import os\n"
        "print('ENV', sorted(os.environ))\n"
        "print(os.environ.get('CODENV_ADMIN_PASSWORD'))\n"
    )
    spec = EnvSpec(python=newest, resources_init_script=script)
    build_id = envs.create_env(app, admin, "demo", spec).build_id
    log = logs.read_log(app, admin, build_id)[0]
    assert builds.get_build(app, admin, build_id).status == "succeeded"
    assert "the-admin-password" not in log and "an-aws-secret" not in log
    assert "'CODENV_ADMIN_PASSWORD'" not in log and "'AWS_SECRET_ACCESS_KEY'" not in log
    assert "'CODENV_RESOURCES_DIR'" in log  # what the script is given, it has


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None]
    location: str = ""

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        if self.location:
            self.send_response(302)
            self.send_header("Location", self.location)
        else:
            self.send_response(401)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return None


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_the_index_probe_never_sends_credentials_to_another_host() -> None:
    class Elsewhere(_Recorder):
        seen: list[str | None] = []  # noqa: RUF012 (one list per test class)

    class Index(_Recorder):
        seen: list[str | None] = []  # noqa: RUF012

    with _serve(Elsewhere) as other:
        Index.location = f"http://{other}/steal/"
        with _serve(Index) as index:
            refused_index([f"http://team:{SECRET}@{index}/simple/"], timeout=5)
    assert Index.seen and Index.seen[0] is not None  # the index itself gets the credentials
    assert Elsewhere.seen == []  # the redirect is not followed


def test_the_revisions_own_plan_and_lock_files_hold_no_credential(
    app: Codenv, admin: Actor, newest: str
) -> None:
    line = f"private @ https://oauth2:{SECRET}@git.example/private-1.0.tar.gz"
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested=f"{line}\n"))
    meta = app.settings.envs_dir / "demo" / "current" / ".codenv"
    for name in ("plan.json", "lock.txt"):
        text = (meta / name).read_text()
        assert SECRET not in text
        assert "oauth2:***@git.example" in text or name == "lock.txt"
