"""`cxpulse exporter`: the organisation-wide read model served to Prometheus.

| module | job |
|---|---|
| `follow.py` | changelog records -> committed state changes, batch by batch (pure) |
| `clock.py` | freshness (`cxpulse_kpi_delay_seconds`) and the evaluation instant (pure) |
| `service.py` | the process: consume the changelog, evaluate on a timer, serve the bytes |
| `command.py` | the CLI entry point |
"""
