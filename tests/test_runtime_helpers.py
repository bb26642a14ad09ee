"""codenv_runtime.resources, the helpers of resources init scripts, on real interpreters.

The core wheel is built the way codenv builds it, installed with uv into a venv of the oldest
and of the newest interpreter of this node, and real init scripts run with that venv's python
from inside a resources dir, with the two variables codenv sets.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from codenv.core_package.codenv_runtime import resources as source_resources
from codenv.envdirs.core_wheel import ensure_core_wheel
from codenv.interpreters import Discovery

CORE_PACKAGE = Path(source_resources.__file__).parent
HELPERS = [
    ("resources_dir", ""),
    ("clear_all_env_vars", ""),
    ("set_env_var", "'A', 'x'"),
    ("set_env_path", "'HF_HOME', 'huggingface'"),
    ("get_env_var", "'A'"),
    ("delete_env_var", "'A'"),
    ("grant_permissions", "'.'"),
]


@dataclass(frozen=True)
class Runtime:
    """A venv with codenv-runtime installed, and a way to run scripts with its python."""

    python: Path
    minor: str

    def run(
        self,
        code: str,
        cwd: Path,
        *,
        resources: Path | None = None,
        vars_file: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"]}
        if resources is not None:
            env["CODENV_RESOURCES_DIR"] = str(resources)
        if vars_file is not None:
            env["CODENV_ENV_VARS_FILE"] = str(vars_file)
        with tempfile.TemporaryDirectory() as scripts:
            script = Path(scripts, "init_script.py")
            script.write_text(textwrap.dedent(code))
            result = subprocess.run(
                [str(self.python), str(script)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        if check and result.returncode != 0:
            raise AssertionError(f"script failed on {self.minor}:\n{result.stderr}")
        return result

    def output(self, code: str, cwd: Path, **kwargs: Any) -> Any:
        """Run a script that prints one JSON document; return it."""
        return json.loads(self.run(code, cwd, **kwargs).stdout)


@pytest.fixture(scope="session", params=["oldest", "newest"])
def runtime(
    request: pytest.FixtureRequest, pythons: Discovery, tmp_path_factory: pytest.TempPathFactory
) -> Runtime:
    minor = request.getfixturevalue(request.param)
    interpreter = pythons.for_minor(minor)
    assert interpreter is not None
    tmp = tmp_path_factory.mktemp(f"runtime-{minor}")
    wheel = ensure_core_wheel(tmp / "wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp / "uv-cache"))
    venv = tmp / "venv"
    uv = find_uv_bin()
    for command in (
        [uv, "venv", str(venv), "--python", interpreter.path],
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)],
    ):
        subprocess.run(command, cwd=tmp, env=env, check=True, capture_output=True, timeout=120)
    return Runtime(venv / "bin" / "python", minor)


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    """An env's directory: its resources dir inside, resources_env.json beside it."""
    (tmp_path / "env" / "resources").mkdir(parents=True)
    return tmp_path / "env"


def _stored(env_dir: Path) -> Any:
    return json.loads((env_dir / "resources_env.json").read_text())


def _context(env_dir: Path) -> dict[str, Any]:
    return {"resources": env_dir / "resources", "vars_file": env_dir / "resources_env.json"}


def test_package_imports_without_context(runtime: Runtime, tmp_path: Path) -> None:
    out = runtime.output(
        """
        import json, sys
        import codenv_runtime
        from codenv_runtime import resources
        print(json.dumps([codenv_runtime.__version__, codenv_runtime.resources is resources,
                          list(sys.version_info[:2])]))
        """,
        tmp_path,
    )
    assert out[:2] == ["0.1.0", True]
    assert "{}.{}".format(*out[2]) == runtime.minor


def test_set_env_path_applies_at_once_and_is_stored_relative(
    runtime: Runtime, env_dir: Path
) -> None:
    resources = env_dir / "resources"
    out = runtime.output(
        """
        import json, os
        from codenv_runtime import resources
        resources.set_env_path("HF_HOME", "huggingface")
        resources.set_env_path("TORCH_HOME", "./models/x/../torch/")
        resources.set_env_path("ROOT", ".")
        print(json.dumps({
            "dir": resources.resources_dir(),
            "cwd": os.getcwd(),
            "environ": os.environ["HF_HOME"],
            "torch": os.environ["TORCH_HOME"],
            "root": resources.get_env_var("ROOT"),
            "get": resources.get_env_var("HF_HOME"),
            "created": os.path.exists("huggingface") or os.path.exists("models"),
        }))
        """,
        resources,
        **_context(env_dir),
    )
    assert out["dir"] == out["cwd"] == str(resources)
    assert out["environ"] == out["get"] == str(resources / "huggingface")
    assert out["torch"] == str(resources / "models" / "torch")
    assert out["root"] == str(resources)
    assert out["created"] is False
    assert _stored(env_dir) == {
        "version": 1,
        "vars": {
            "HF_HOME": {"kind": "path", "value": "huggingface"},
            "TORCH_HOME": {"kind": "path", "value": "models/torch"},
            "ROOT": {"kind": "path", "value": "."},
        },
    }
    assert sorted(p.name for p in env_dir.iterdir()) == ["resources", "resources_env.json"]


def test_set_get_delete_clear(runtime: Runtime, env_dir: Path) -> None:
    vars_file = env_dir / "resources_env.json"
    vars_file.write_text(
        json.dumps({"version": 1, "vars": {"OLD": {"kind": "value", "value": "kept"}}})
    )
    vars_file.chmod(0o640)
    out = runtime.output(
        """
        import json, os
        from codenv_runtime import resources as r
        seen = {"old": r.get_env_var("OLD"), "missing": r.get_env_var("MISSING")}
        r.set_env_var("A", "1")
        r.set_env_path("B", "data")
        r.set_env_var("A", "2")  # keeps its place
        seen["order"] = list(json.load(open(os.environ["CODENV_ENV_VARS_FILE"]))["vars"])
        seen["a"] = [r.get_env_var("A"), os.environ["A"]]
        seen["deleted"] = r.delete_env_var("A")
        seen["after_delete"] = [r.get_env_var("A"), os.environ.get("A")]
        seen["unknown"] = r.delete_env_var("NEVER_SET")
        r.delete_env_var("PATH")  # not an env var of the env: the script's PATH stays
        seen["path_kept"] = "PATH" in os.environ
        r.set_env_var("EMPTY", "")
        seen["empty"] = r.get_env_var("EMPTY")
        seen["before_clear"] = list(json.load(open(os.environ["CODENV_ENV_VARS_FILE"]))["vars"])
        r.clear_all_env_vars()
        seen["after_clear"] = [os.environ.get("B"), os.environ.get("EMPTY"), r.get_env_var("B")]
        print(json.dumps(seen))
        """,
        env_dir / "resources",
        **_context(env_dir),
    )
    assert out["old"] == "kept"
    assert out["missing"] is None
    assert out["order"] == ["OLD", "A", "B"]
    assert out["a"] == ["2", "2"]
    assert out["deleted"] is None
    assert out["after_delete"] == [None, None]
    assert out["unknown"] is None
    assert out["path_kept"] is True
    assert out["empty"] == ""
    assert out["before_clear"] == ["OLD", "B", "EMPTY"]
    assert out["after_clear"] == [None, None, None]
    assert _stored(env_dir) == {"version": 1, "vars": {}}
    # Rewritten atomically in place: same mode, no temporary file left behind.
    assert stat.S_IMODE(vars_file.stat().st_mode) == 0o640
    assert sorted(p.name for p in env_dir.iterdir()) == ["resources", "resources_env.json"]


def test_names_values_and_paths_are_validated(runtime: Runtime, env_dir: Path) -> None:
    out = runtime.output(
        """
        import json
        from codenv_runtime import resources as r
        calls = [
            ("set_env_var", ("1A", "x")), ("set_env_var", ("A-B", "x")),
            ("set_env_var", ("", "x")), ("set_env_var", (5, "x")),
            ("set_env_var", ("A", 5)), ("set_env_var", ("A", None)),
            ("set_env_var", ("A", b"x")), ("set_env_var", ("A", "a\\0b")),
            ("get_env_var", ("A B",)), ("delete_env_var", ("é",)),
            ("set_env_path", ("HF_HOME", "..")), ("set_env_path", ("HF_HOME", "../x")),
            ("set_env_path", ("HF_HOME", "a/../../x")), ("set_env_path", ("HF_HOME", "/tmp/x")),
            ("set_env_path", ("HF_HOME", "")), ("set_env_path", ("HF_HOME", 3)),
            ("set_env_path", ("1X", "ok")),
        ]
        errors = []
        for function, args in calls:
            try:
                getattr(r, function)(*args)
            except ValueError as exc:
                errors.append([function, str(exc)])
            else:
                errors.append([function, None])
        print(json.dumps(errors))
        """,
        env_dir / "resources",
        **_context(env_dir),
    )
    assert all(message for _, message in out), out
    messages = [message for _, message in out]
    assert "invalid environment variable name '1A'" in messages[0]
    assert "must be a string, got int" in messages[4]
    assert "must be a string, got bytes" in messages[6]
    assert "NUL" in messages[7]
    assert all("must stay inside the resources directory" in m for m in messages[10:13])
    assert "must be relative to the resources directory" in messages[13]
    assert "'/tmp/x'" in messages[13]
    # Nothing was written by the refused calls.
    assert not (env_dir / "resources_env.json").exists()


def test_clear_all_replaces_a_damaged_file(runtime: Runtime, env_dir: Path) -> None:
    (env_dir / "resources_env.json").write_text("{not json")
    out = runtime.output(
        """
        import json
        from codenv_runtime import resources as r
        try:
            r.get_env_var("A")
        except ValueError as exc:
            error = str(exc)
        r.clear_all_env_vars()
        print(json.dumps([error, r.get_env_var("A")]))
        """,
        env_dir / "resources",
        **_context(env_dir),
    )
    assert "is not valid JSON" in out[0]
    assert out[1] is None
    assert _stored(env_dir) == {"version": 1, "vars": {}}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_grant_permissions(runtime: Runtime, env_dir: Path, tmp_path: Path) -> None:
    resources = env_dir / "resources"
    models, sub, other = resources / "models", resources / "models" / "sub", resources / "other"
    for directory in (models, sub, other):
        directory.mkdir()
        directory.chmod(0o700)
    files = {
        models / "a.txt": 0o600,
        models / "run.sh": 0o700,
        sub / "b.bin": 0o600,
        other / "c.txt": 0o600,
        tmp_path / "outside.txt": 0o600,
    }
    for path, mode in files.items():
        path.write_text("x")
        path.chmod(mode)
    (models / "link").symlink_to(tmp_path / "outside.txt")
    (resources / "escape").symlink_to(tmp_path)
    resources.chmod(0o700)

    out = runtime.output(
        """
        import json, os
        from codenv_runtime import resources as r
        r.grant_permissions("models")
        r.grant_permissions(os.path.join(r.resources_dir(), "other", "c.txt"))
        refused = []
        for path in ("..", "../outside.txt", "/etc", os.path.dirname(r.resources_dir()),
                     "escape/outside.txt", "models/../../outside.txt"):
            try:
                r.grant_permissions(path)
            except ValueError as exc:
                refused.append(str(exc))
        try:
            r.grant_permissions("no/such/thing")
        except FileNotFoundError as exc:
            refused.append(str(exc))
        print(json.dumps(refused))
        """,
        resources,
        **_context(env_dir),
    )
    assert len(out) == 7
    assert all("only works inside the resources directory" in m for m in out[:6])
    assert "does not exist" in out[6]
    assert _mode(models) == _mode(sub) == 0o755
    assert _mode(models / "a.txt") == _mode(sub / "b.bin") == 0o644
    assert _mode(models / "run.sh") == 0o755
    assert _mode(other / "c.txt") == 0o644
    # Parents are made traversable (not listable) so other users can reach what was granted.
    assert _mode(other) == 0o711
    assert _mode(resources) == 0o711
    # Symbolic links are not followed; nothing outside the resources dir changes.
    assert _mode(tmp_path / "outside.txt") == 0o600


def test_helpers_outside_an_init_script(runtime: Runtime, env_dir: Path) -> None:
    calls = ", ".join(f"({name!r}, lambda: r.{name}({args}))" for name, args in HELPERS)
    code = f"""
        import json
        from codenv_runtime import resources as r
        out = []
        for name, call in [{calls}]:
            try:
                call()
            except r.NotInInitScript as exc:
                out.append([name, isinstance(exc, RuntimeError), str(exc)])
        print(json.dumps(out))
        """
    resources = env_dir / "resources"
    for context in ({}, {"resources": resources}, {"vars_file": env_dir / "x.json"}):
        out = runtime.output(code, resources, **context)
        assert [name for name, _, _ in out] == [name for name, _ in HELPERS]
        for name, is_runtime_error, message in out:
            assert is_runtime_error
            assert f"codenv_runtime.resources.{name}()" in message
            assert "can only be called from a resources init script run by codenv" in message
            assert "codenv resources init NAME" in message
            assert "run the resources init script on update" in message
            if "vars_file" not in context:
                assert "CODENV_ENV_VARS_FILE" in message
            if "resources" not in context:
                assert "CODENV_RESOURCES_DIR" in message
    assert not (env_dir / "x.json").exists()


def test_resolve_and_load_need_no_context(runtime: Runtime, env_dir: Path) -> None:
    vars_file = env_dir / "resources_env.json"
    runtime.run(
        """
        from codenv_runtime import resources as r
        r.set_env_var("TOKEN_MODE", "off")
        r.set_env_path("HF_HOME", "huggingface/")
        """,
        env_dir / "resources",
        **_context(env_dir),
    )
    out = runtime.output(
        f"""
        import json
        from codenv_runtime import resources as r
        out = {{
            "loaded": r.load_env_vars_file({str(vars_file)!r}, "/srv/moved/resources"),
            "missing": r.load_env_vars_file({str(env_dir / "nope.json")!r}, "/r"),
            "resolved": r.resolve_env_vars(
                {{"version": 1, "vars": {{"P": {{"kind": "path", "value": "a/b"}},
                                         "V": {{"kind": "value", "value": "a/b"}}}}}}, "/r"),
            "empty": r.resolve_env_vars({{}}, "/r"),
            "errors": [],
        }}
        for bad in ({{"version": 2, "vars": {{}}}}, {{"version": 1, "vars": []}},
                    {{"vars": {{"A": {{"kind": "other", "value": "x"}}}}}},
                    {{"vars": {{"A": {{"kind": "path", "value": "../x"}}}}}},
                    {{"vars": {{"A": {{"kind": "value", "value": 1}}}}}},
                    {{"vars": {{"1A": {{"kind": "value", "value": "x"}}}}}}):
            try:
                r.resolve_env_vars(bad, "/r")
            except ValueError as exc:
                out["errors"].append(str(exc))
        print(json.dumps(out))
        """,
        env_dir,
    )
    assert out["loaded"] == {"TOKEN_MODE": "off", "HF_HOME": "/srv/moved/resources/huggingface"}
    assert list(out["loaded"]) == ["TOKEN_MODE", "HF_HOME"]
    assert out["missing"] == {}
    assert out["resolved"] == {"P": "/r/a/b", "V": "a/b"}
    assert out["empty"] == {}
    assert len(out["errors"]) == 6
    assert "unsupported env vars format version 2" in out["errors"][0]


def test_source_module_readers_in_codenv_process(tmp_path: Path) -> None:
    """codenv's own services import the readers from the source tree."""
    vars_file = tmp_path / "resources_env.json"
    assert source_resources.load_env_vars_file(vars_file, tmp_path / "resources") == {}
    vars_file.write_text(
        json.dumps({"version": 1, "vars": {"HF_HOME": {"kind": "path", "value": "hf"}}})
    )
    assert source_resources.load_env_vars_file(str(vars_file), "/r") == {"HF_HOME": "/r/hf"}
    vars_file.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        source_resources.load_env_vars_file(vars_file, "/r")


def test_core_package_compiles_on_python_36(pythons: Discovery, tmp_path: Path) -> None:
    interpreter = pythons.for_minor("3.6")
    if interpreter is None:
        pytest.skip("no Python 3.6 on this node")
    sources = sorted(str(path) for path in CORE_PACKAGE.glob("*.py"))
    assert any(path.endswith("resources.py") for path in sources)
    code = (
        "import py_compile, sys\n"
        "for i, path in enumerate(sys.argv[1:]):\n"
        "    py_compile.compile(path, cfile='%s/%d.pyc' % (sys.argv[0].rsplit('/', 1)[0], i),"
        " doraise=True)\n"
    )
    script = tmp_path / "compile.py"
    script.write_text(code)
    result = subprocess.run(
        [interpreter.path, str(script), *sources], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
