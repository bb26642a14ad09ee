"""Filters written the way the database's index can serve them.

An index on an expression serves only that very expression, and SQLAlchemy's JSON path
(`spec["python"]`) binds the path as a parameter, which SQLite cannot match against an index:
`spec_python` is the same SQL in the filter and in its index. A name prefix is a LIKE, which
SQLite's ignores case for and so serves only from a NOCASE index, and PostgreSQL serves only
from a `varchar_pattern_ops` index unless the database's collation is C: `starts_with` is a
GLOB on SQLite (case-sensitive, served by the names' unique index; the keys are lower case)
and a LIKE on PostgreSQL (served by `ix_code_envs_name_prefix`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class spec_python(FunctionElement[str]):
    """An env's Python version (`"3.11"`) from its spec column, as text."""

    type = String()
    inherit_cache = True
    name = "spec_python"


@compiles(spec_python, "sqlite")
def _sqlite_python(element: spec_python, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.python')"


@compiles(spec_python, "postgresql")
def _postgresql_python(element: spec_python, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} ->> 'python')"


class starts_with(FunctionElement[bool]):
    """starts_with(column, glob pattern, LIKE pattern escaped with `/`); see the module.
    Untyped: a boolean's would be written `... = 1` on SQLite, which no index serves."""

    inherit_cache = True
    name = "starts_with"


def glob_prefix(prefix: str) -> str:
    """A GLOB pattern for text starting with `prefix`, its wildcards taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in prefix) + "*"


def like_prefix(prefix: str) -> str:
    """A LIKE pattern for text starting with `prefix`, its wildcards escaped with `/`."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


@compiles(starts_with, "sqlite")
def _sqlite_prefix(element: starts_with, compiler: SQLCompiler, **kw: Any) -> str:
    column, glob, _like = element.clauses
    return f"{compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)}"


@compiles(starts_with)
def _like_prefix(element: starts_with, compiler: SQLCompiler, **kw: Any) -> str:
    column, _glob, like = element.clauses
    return f"{compiler.process(column, **kw)} LIKE {compiler.process(like, **kw)} ESCAPE '/'"
