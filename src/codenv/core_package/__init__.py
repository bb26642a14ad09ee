"""Source of `codenv-runtime`, the core package codenv installs in each env (data, not imported)."""
