"""The fast tier: everything above the installer, on the fake installer shipped with codenv.

Run it alone with `scripts/test tests/fast` (well under a minute).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codenv.backends.fake import FakeInstaller
from codenv.services.actor import Actor
from codenv.services.app import Codenv, QueueKind, open_codenv
from codenv.settings import load_settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fast/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.fast)


@pytest.fixture
def fake() -> FakeInstaller:
    return FakeInstaller(versions={"alpha": "1.0", "beta": "2.0"})


def open_fake(home: Path, fake: FakeInstaller, queue: QueueKind = "inline") -> Codenv:
    settings = load_settings(home, {"CODENV_INDEX_URL": "http://127.0.0.1:9/simple"})
    return open_codenv(settings, queue, installer=fake, editables=fake)


@pytest.fixture
def app(tmp_path: Path, fake: FakeInstaller) -> Iterator[Codenv]:
    opened = open_fake(tmp_path / "home", fake)
    yield opened
    opened.close()


@pytest.fixture
def admin() -> Actor:
    return Actor.local_admin()
