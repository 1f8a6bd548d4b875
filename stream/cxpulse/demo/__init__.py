"""`cxpulse demo`: the whole system live on one machine, in one command.

| module | job |
|---|---|
| `command.py` | the CLI entry point: flags, checks, `--stop` |
| `supervisor.py` | starts, watches and stops every part; the console |
| `parts.py` | the parts (argv, ports, readiness) and the configs written for them |
| `receiver.py` | the webhook receiver Alertmanager notifies (printed on the console) |
| `incidents.py` | when the simulated team stalls, and the simulated time of day |
| `simulator.py` | the simulator part: produces events when their time comes |
| `zendesk.py` | `--vendor zendesk`: the events as signed Zendesk webhooks to `cxpulse ingest` |

Starts, on free loopback ports: a real Kafka broker, the worker(s), a real
Prometheus loading the generated rules, a real Alertmanager with the
project's routing (its webhooks rewritten to a receiver built into this
process, which prints every notification), the simulator producing events
at the current time (`--speed N` compresses N seconds of support activity
into one) with an incident on one team every so often (`--incident-*`), and
the wall.

Why a supervisor rather than a shell script: every part is a child this
process owns, so if one dies the demo says which, with that part's own last
log lines, and stops the others; Ctrl-C (or SIGTERM) stops everything, and
nothing is left running. All state (broker data, worker stores, TSDB, logs)
lives under `--dir` (default `var/demo` in the clone), never in a directory
shared between clones; a lock there refuses a second demo on the same
directory, and `cxpulse demo --stop` (`scripts/demo stop`, `make demo-stop`)
stops the demo of that directory only.

Time: the simulator compresses time, Prometheus does not. Rule windows and
`for:` run on the wall clock, so at `--speed 60` the burn-rate page's 5m/1h
windows cover 5h/60h of simulated time and its `for: 2m` two simulated hours;
the predictive page compares with the level 15+ wall minutes earlier, so it
cannot fire in a demo's first 15 minutes. An injected incident (a stall of
`INCIDENT_FACTOR`) therefore pages through `CxpulseFrtSlaBurnRate1h` at
speed 60, about 3-4 minutes after it starts (docs/alerts.md, "In the demo"),
provided the team has tickets enough: faster than real time the first incident
is put at 10:00 UTC of the simulated day (`simulated_span`).

Adding a process (e.g. `cxpulse exporter`) is one entry in `parts()`.
"""
