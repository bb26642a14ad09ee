"""The seed system's (Dataiku DSS) public API, as its official client `dataikuapi` calls it.

An adapter beside `/api/v1`, mounted under `/dip/publicapi` and `/public/api` (`app.py`), that
calls the same services with the same permission checks: it only translates requests and
answers (the specification is the DSS_API document of issue 14). Callers authenticate with API
tokens only (`auth.py`); every failure under the two prefixes answers DSS's error JSON
(`errors.py`), which the client turns into a readable `DataikuException`. These routes stay out
of codenv's OpenAPI schema.
"""
