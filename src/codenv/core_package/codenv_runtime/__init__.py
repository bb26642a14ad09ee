"""codenv-runtime: the core package installed in every codenv env.

Pure Python and importable on every interpreter codenv supports (3.6 and newer), so it avoids
syntax and modules newer than 3.6.

`codenv_runtime.resources` holds the helpers of resources init scripts (env vars, permissions)
and the readers of an env's resources env vars.
"""

__version__ = "0.1.0"

from . import resources  # noqa: E402  (cheap: json, os, re, stat, typing)

__all__ = ["__version__", "resources"]
