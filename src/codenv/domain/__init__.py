"""Pure rules: names, specs, requirements, the package-set catalog and plans. No I/O."""
