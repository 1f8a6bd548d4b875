"""`cxpulse exporter`: the organisation-wide read model served to Prometheus.

| module | job |
|---|---|
| `clock.py` | freshness (`cxpulse_kpi_delay_seconds`) and the evaluation instant (pure) |
| `service.py` | the process: consume the changelog, evaluate on a timer, serve the bytes |
| `command.py` | the CLI entry point |

It reads the changelog with `cxpulse.changelog.follow` and renders with
`cxpulse.exposition`; it imports no worker module (`.importlinter`).
"""
