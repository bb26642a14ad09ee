"""codenv-runtime: the core package installed in every codenv env.

Pure Python and importable on every interpreter codenv supports (3.6 and newer), so it avoids
syntax and modules newer than 3.6.
"""

__version__ = "0.1.0"
