"""The REST API adapter (FastAPI): parse, call a service, return its view. No business rules."""
