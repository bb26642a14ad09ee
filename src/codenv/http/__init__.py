"""What the REST API and the web console share: the app, who calls, errors, uploads.

`app.py` assembles both adapters; every other module here sits below `api/` and `web/`, which
never import each other.
"""
