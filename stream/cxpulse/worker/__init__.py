"""The worker: two runtimes (direct aiokafka loop, faust agent) around the same core and
the same changelog scheme (`cxpulse.changelog`), and the `cxpulse worker` command.

| module | job |
|---|---|
| `direct.py` | the default runtime: aiokafka batch loop, transactions, local store |
| `agents.py`, `app.py` | the faust runtime |
| `shared.py` | what both runtimes share: one message's fate, status, lag |
| `localstore.py` | the direct runtime's local copy of its partitions' state |
| `metrics.py` | the worker's own `/metrics` (health) and the partial KPI view |
| `command.py` | the CLI entry point |
"""
