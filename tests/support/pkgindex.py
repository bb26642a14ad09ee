"""A real PEP 503 "simple" package index on loopback, serving a directory of files.

Integration tests point ``uv pip install --index-url`` / ``pip install --index-url`` at
``PackageIndex.url`` to install sample distributions without any network access.
The directory is re-read on every request, so files added mid-test become visible.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import tarfile
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from . import pkgbuild

__all__ = ["FileInfo", "PackageIndex", "Request", "normalize_name", "project_of"]

_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")
_REALM = "codenv-test-index"


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str | None:
    """Normalized project name of a distribution file name, or None if it is not one."""
    if filename.endswith(".whl"):
        return normalize_name(filename.split("-", 1)[0])
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix) and "-" in filename:
            return normalize_name(filename.removesuffix(suffix).rsplit("-", 1)[0])
    return None


def _wheel_metadata(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(names[0]).decode() if names else None


def _sdist_pkg_info(path: Path) -> str | None:
    with tarfile.open(path) as archive:
        for member in archive:
            if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                handle = archive.extractfile(member)
                return handle.read().decode() if handle else None
    return None


def _read_requires_python(path: Path) -> str | None:
    """Requires-Python from a wheel's METADATA or an sdist's PKG-INFO, when present."""
    try:
        if path.name.endswith(".whl"):
            text = _wheel_metadata(path)
        elif path.name.endswith(".tar.gz"):
            text = _sdist_pkg_info(path)
        else:
            return None
    except (OSError, KeyError, zipfile.BadZipFile, tarfile.TarError):
        return None  # a broken file is still listed; the installer will report it
    return HeaderParser().parsestr(text).get("Requires-Python") if text else None


@dataclass(frozen=True)
class FileInfo:
    """What a project page says about one file."""

    sha256: str
    requires_python: str | None


@dataclass(frozen=True)
class Request:
    """One logged request; ``status`` is what the index answered."""

    method: str
    path: str
    status: int


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _html_page(title: str, links: Sequence[str]) -> bytes:
    body = "\n".join(links)
    return (
        "<!DOCTYPE html>\n<html><head>"
        '<meta name="pypi:repository-version" content="1.0">'
        f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n"
    ).encode()


class PackageIndex:
    """Serve ``directory`` as a simple index on ``127.0.0.1`` (a free port) while entered.

    ``auth=("user", "secret")`` requires HTTP basic auth on every path. ``requests`` logs
    the GET paths asked for, in order; ``request_log`` has method and status too.
    """

    def __init__(self, directory: Path, *, auth: tuple[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.auth = auth
        self._lock = threading.Lock()
        self._log: list[Request] = []
        # Hashing is cached per (name, size, mtime) so a replaced file is re-read.
        self._info_cache: dict[tuple[str, int, int], FileInfo] = {}
        self._server: _IndexServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> PackageIndex:
        if self._server is not None:
            raise RuntimeError("index already started")
        self._server = _IndexServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"package-index-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> PackageIndex:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ---

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("index not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The ``--index-url``: ``http://127.0.0.1:PORT/simple/``."""
        return f"{self.root_url}/simple/"

    def url_with_credentials(self, user: str, password: str) -> str:
        """``http://user:password@127.0.0.1:PORT/simple/`` (values percent-encoded)."""
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"http://{userinfo}@127.0.0.1:{self.port}/simple/"

    def file_url(self, filename: str) -> str:
        return f"{self.root_url}/files/{quote(filename)}"

    # --- request log ---

    @property
    def request_log(self) -> list[Request]:
        """Every request so far, in order (a copy; safe to inspect while serving)."""
        with self._lock:
            return list(self._log)

    @property
    def requests(self) -> list[str]:
        """Paths of all GET requests so far, rejected ones included (HEAD probes are
        only in ``request_log``, so a download counts once)."""
        return [r.path for r in self.request_log if r.method == "GET"]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # --- content ---

    def add_wheel(self, name: str, version: str, **kwargs: Any) -> Path:
        """``pkgbuild.build_wheel`` into the served directory."""
        return pkgbuild.build_wheel(self.directory, name, version, **kwargs)

    def add_sdist(self, name: str, version: str, **kwargs: Any) -> Path:
        """``pkgbuild.build_sdist`` into the served directory."""
        return pkgbuild.build_sdist(self.directory, name, version, **kwargs)

    def distributions(self) -> dict[str, list[Path]]:
        """Current files by normalized project name (the directory is re-read each call)."""
        projects: dict[str, list[Path]] = {}
        for path in sorted(self.directory.iterdir()):
            project = project_of(path.name) if path.is_file() else None
            if project is not None:
                projects.setdefault(project, []).append(path)
        return projects

    def file_info(self, path: Path) -> FileInfo:
        stat = path.stat()
        key = (path.name, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._info_cache.get(key)
        if cached is None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            cached = FileInfo(digest, _read_requires_python(path))
            with self._lock:
                self._info_cache[key] = cached
        return cached

    # --- HTTP (called from handler threads) ---

    def _authorized(self, header: str | None) -> bool:
        if self.auth is None:
            return True
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return header is not None and hmac.compare_digest(header, f"Basic {expected}")

    def respond(self, method: str, raw_path: str, headers: Mapping[str, str]) -> _Response:
        """Answer one GET/HEAD request; apart from the handler so it is easy to test."""
        response = self._route(raw_path, headers)
        with self._lock:
            self._log.append(Request(method, raw_path, response.status))
        return response

    def _route(self, raw_path: str, headers: Mapping[str, str]) -> _Response:
        if not self._authorized(headers.get("Authorization")):
            challenge = {"WWW-Authenticate": f'Basic realm="{_REALM}"'}
            return _Response(401, b"authentication required\n", headers=challenge)
        path = unquote(urlsplit(raw_path).path)
        if path in ("/simple", "/simple/"):
            return self._root_page()
        if path.startswith("/simple/"):
            return self._project_page(path.removeprefix("/simple/").strip("/"))
        if path.startswith("/files/"):
            return self._file(path.removeprefix("/files/"))
        return _Response(404, b"not found\n")

    def _root_page(self) -> _Response:
        links = [
            f'<a href="/simple/{quote(name)}/">{html.escape(name)}</a>'
            for name in sorted(self.distributions())
        ]
        return _Response(200, _html_page("Simple index", links), "text/html; charset=utf-8")

    def _project_page(self, name: str) -> _Response:
        files = self.distributions().get(normalize_name(name))
        if not files:
            return _Response(404, b"no such project\n")
        links = []
        for path in files:
            info = self.file_info(path)
            extra = ""
            if info.requires_python:
                extra = f' data-requires-python="{html.escape(info.requires_python)}"'
            href = f"/files/{quote(path.name)}#sha256={info.sha256}"
            links.append(f'<a href="{href}"{extra}>{html.escape(path.name)}</a><br>')
        page = _html_page(f"Links for {normalize_name(name)}", links)
        return _Response(200, page, "text/html; charset=utf-8")

    def _file(self, filename: str) -> _Response:
        # Only plain names of files directly in the directory: no traversal, no subdirs.
        path = self.directory / filename
        if "/" in filename or filename.startswith(".") or not path.is_file():
            return _Response(404, b"no such file\n")
        return _Response(200, path.read_bytes(), "application/octet-stream")


class _IndexServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        index: PackageIndex,
    ) -> None:
        self.index = index
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _IndexServer

    def do_GET(self) -> None:
        self._reply(with_body=True)

    def do_HEAD(self) -> None:
        # uv probes files with HEAD (range-request support) before downloading them.
        self._reply(with_body=False)

    def _reply(self, *, with_body: bool) -> None:
        response = self.server.index.respond(self.command, self.path, self.headers)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output should not carry one line per request."""
