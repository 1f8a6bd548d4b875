"""The live shell: faust agents and the Prometheus exporter around the core."""
