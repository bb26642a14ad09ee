"""A real Jupyter kernel started from an env's kernelspec sees the resources env vars.

ipykernel comes from the public index, hence the marker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from conftest import Node

pytestmark = pytest.mark.public_index

SCRIPT = """
import os
from codenv_runtime import resources
resources.set_env_path("HF_HOME", "huggingface")
os.makedirs(os.environ["HF_HOME"], exist_ok=True)
with open(os.path.join(os.environ["HF_HOME"], "model.txt"), "w") as handle:
    handle.write("tiny model")
"""


def _execute(client: object, code: str) -> str:
    output: list[str] = []

    def hook(message: dict[str, object]) -> None:
        content = message["content"]
        assert isinstance(content, dict)
        if message["msg_type"] == "stream":
            output.append(str(content["text"]))

    reply = client.execute_interactive(code, output_hook=hook, timeout=60)  # type: ignore[attr-defined]
    assert reply["content"]["status"] == "ok", reply
    return "".join(output).strip()


def test_kernel_from_kernelspec_sees_resources(tmp_path: Path, newest: str) -> None:
    node = Node(tmp_path / "home", "https://pypi.org/simple")
    script = tmp_path / "init.py"
    script.write_text(SCRIPT)
    node.run("create", "demo", "--python", newest, "--jupyter", timeout=600)
    node.run("resources", "script", "demo", "--set", str(script))
    node.run("update", "demo", timeout=600)

    kernels = json.loads(node.run("kernels", "list", "--json").stdout)
    assert [k["display_name"] for k in kernels] == ["Python (codenv demo)"]
    prefix = tmp_path / "jupyter"
    node.run("kernels", "install", "demo", "--prefix", str(prefix))
    spec_manager = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    assert "codenv-demo" in spec_manager.find_kernel_specs()

    manager = KernelManager(kernel_name="codenv-demo", kernel_spec_manager=spec_manager)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        printed = _execute(
            client,
            "import os, sys; home = os.environ['HF_HOME']; "
            "print(home); print(open(os.path.join(home, 'model.txt')).read()); print(sys.prefix)",
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    resources = node.home / "envs" / "demo" / "resources"
    assert printed.splitlines() == [
        str(resources / "huggingface"),
        "tiny model",
        str(node.home / "envs" / "demo" / "current"),
    ]

    node.run("delete", "demo", "--yes")
    assert json.loads(node.run("kernels", "list", "--json").stdout) == []
