"""The web console: server-rendered pages on the same services and permission checks as the API."""
