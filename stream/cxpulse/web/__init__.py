"""HTTP serving shared by the project's processes (worker, exporter): TLS and basic auth."""
