"""The short-lived lock cache: builds of one process that resolve the same input at the same
time both store their lock (a shared temporary file name made the second one crash)."""

from __future__ import annotations

import threading
from pathlib import Path

from codenv.builds.resolutions import ResolutionCache
from codenv.domain.catalog import Catalog
from codenv.domain.plan import make_plan
from codenv.domain.pythons import Interpreter
from codenv.domain.spec import EnvSpec

PY = Interpreter("/usr/bin/python3.11", "3.11.9", "cpython", "system", True)


def test_concurrent_puts_of_one_entry_all_succeed(tmp_path: Path) -> None:
    cache = ResolutionCache(tmp_path / "resolutions", ttl_seconds=60)
    plan = make_plan(EnvSpec(python="3.11"), PY, Catalog(()), (), (), {})
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def put(index: int) -> None:
        start.wait()
        try:
            for _ in range(50):
                cache.put(plan, "alpha\n", "", f"alpha==1.0  # {index}\n")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = cache.get(plan, "alpha\n", "")
    assert found is not None and found[0].startswith("alpha==1.0")
    assert list((tmp_path / "resolutions").glob("*.tmp")) == []
