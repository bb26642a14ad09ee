"""Where an env lives on disk: revisions, the `current` link, resources, kernelspecs,
and the core wheel every env installs."""
