"""A spec field as the same SQL in a filter and in the index that serves it: an index on an
expression serves only that very expression, and SQLAlchemy's JSON path (`spec["python"]`)
binds the path as a parameter, which SQLite cannot match against an index."""

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
def _sqlite(element: spec_python, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.python')"


@compiles(spec_python, "postgresql")
def _postgresql(element: spec_python, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} ->> 'python')"
