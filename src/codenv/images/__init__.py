"""Container images: OCI layers, image configs and manifests written by codenv itself, and the
OCI distribution API client that pushes them. Executes; decides nothing and stores nothing."""
