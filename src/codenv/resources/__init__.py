"""The resources dir of an env: a file explorer confined to it (no permissions here)."""

from codenv.resources.confine import Entry, confined
from codenv.resources.files import (
    get_file,
    list_dir,
    open_file,
    put_file,
    put_stream,
    put_zip,
    read_file,
    remove,
    stat_entry,
)
from codenv.resources.quota import WriteLimits

__all__ = [
    "Entry",
    "WriteLimits",
    "confined",
    "get_file",
    "list_dir",
    "open_file",
    "put_file",
    "put_stream",
    "put_zip",
    "read_file",
    "remove",
    "stat_entry",
]
