"""Names of the Prometheus series cxpulse exposes: one definition for the exporter,
the generated alert rules and the generated dashboards, so they cannot drift.

Conventions: base units (seconds, ratios 0..1; NPS is a score -100..100),
`_total` only on counters that never go down. Windowed KPIs are gauges with a
`window` label (`15m`, `1h`, `24h`) because a rolling window can shrink. Each
dimension label holds a capped value, or `all` on the roll-up series, so that
`team="all"` reads the whole organisation without a PromQL aggregation that
would be wrong for quantiles and ratios.
"""

from __future__ import annotations

PREFIX = "cxpulse"
ALL = "all"

TICKET_DIMS = ("team", "channel", "priority")
SURVEY_DIMS = ("team", "channel", "agent", "touchpoint")

# -- windowed ticket KPIs (gauges; labels: window + TICKET_DIMS [+ percentile]) -----------
FRT = f"{PREFIX}_first_response_time_seconds"  # percentile="50|90|99"
FRT_MEAN = f"{PREFIX}_first_response_time_mean_seconds"
FRT_COUNT = f"{PREFIX}_first_responses"
RESOLUTION = f"{PREFIX}_resolution_time_seconds"
RESOLUTION_MEAN = f"{PREFIX}_resolution_time_mean_seconds"
FIRST_SOLVES = f"{PREFIX}_first_solves"
WAIT = f"{PREFIX}_customer_wait_time_seconds"
WAIT_MEAN = f"{PREFIX}_customer_wait_time_mean_seconds"
SLA_MET = f"{PREFIX}_frt_sla_met"
SLA_BREACHED = f"{PREFIX}_frt_sla_breached"
SLA_COMPLIANCE = f"{PREFIX}_frt_sla_compliance_ratio"
FCR = f"{PREFIX}_fcr_ratio"
REOPEN = f"{PREFIX}_reopen_ratio"
CREATED = f"{PREFIX}_tickets_created"
CONTACTS = f"{PREFIX}_customer_contacts"
TICKETS_PER_AGENT = f"{PREFIX}_tickets_per_agent"  # labels: window, team
AGENT_SOLVES = f"{PREFIX}_agent_solves"  # labels: window, agent
AGENT_REPLIES = f"{PREFIX}_agent_replies"  # labels: window, agent

# -- windowed survey KPIs (gauges; labels: window + SURVEY_DIMS) -------------------------
CSAT = f"{PREFIX}_csat_ratio"
CES = f"{PREFIX}_ces_ratio"
NPS = f"{PREFIX}_nps_score"
SURVEY_VALUE = {"csat": CSAT, "ces": CES, "nps": NPS}
SURVEY_RESPONSES = {k: f"{PREFIX}_{k}_responses" for k in SURVEY_VALUE}
SURVEY_CI_LOWER = {k: f"{v}_ci_lower" for k, v in SURVEY_VALUE.items()}
SURVEY_CI_UPPER = {k: f"{v}_ci_upper" for k, v in SURVEY_VALUE.items()}
SURVEY_MEAN = {"csat": f"{PREFIX}_csat_mean_score", "ces": f"{PREFIX}_ces_mean_score"}
#: (contract 1.1) responses / offers in the window, and the offers (its n)
SURVEY_RESPONSE_RATE = {k: f"{PREFIX}_{k}_response_ratio" for k in SURVEY_VALUE}
SURVEY_OFFERS = {k: f"{PREFIX}_{k}_offers" for k in SURVEY_VALUE}

# -- current state (gauges; labels: TICKET_DIMS) -----------------------------------------
BACKLOG = f"{PREFIX}_backlog_tickets"
UNASSIGNED = f"{PREFIX}_unassigned_tickets"
UNANSWERED = f"{PREFIX}_unanswered_tickets"
OLDEST_UNANSWERED = f"{PREFIX}_oldest_unanswered_age_seconds"
AT_RISK = f"{PREFIX}_frt_at_risk_tickets"  # extra label: threshold="0.5|0.75"
#: unanswered past their FRT deadline (the at-risk band ends at the deadline)
BREACHED_UNANSWERED = f"{PREFIX}_frt_breached_unanswered_tickets"
#: unanswered tickets that will pass their FRT deadline at least, at the team's pace of the
#: last 15 min whatever order it answers in (cxpulse.core.evaluation.backlog.forecast_breaches)
FORECAST_BREACHES = f"{PREFIX}_frt_forecast_breach_tickets"
AGENT_OPEN = f"{PREFIX}_agent_open_assigned_tickets"  # labels: agent
#: labels: team. Evidence that a share KPI collapsed (CUSUM / threshold, 0..1; 1 = alert;
#: cxpulse.core.evidence): the team's answers of the last 24 h, one step per slice.
COLLAPSE_EVIDENCE = {k: f"{PREFIX}_{k}_collapse_evidence_ratio" for k in ("csat", "ces", "fcr")}

# -- cumulative counters and histograms (sum across workers) -----------------------------
CREATED_TOTAL = f"{PREFIX}_tickets_created_total"
SLA_MET_TOTAL = f"{PREFIX}_frt_sla_met_total"
SLA_BREACHED_TOTAL = f"{PREFIX}_frt_sla_breached_total"
FRT_HISTOGRAM = f"{PREFIX}_first_response_seconds"  # _bucket/_sum/_count
RESOLUTION_HISTOGRAM = f"{PREFIX}_resolution_seconds"
WAIT_HISTOGRAM = f"{PREFIX}_customer_wait_seconds"
#: (contract 1.1) labels: survey; and CSAT answers on other scales: survey, scale, score
SURVEY_OFFERS_TOTAL = f"{PREFIX}_survey_offers_total"
SURVEY_OTHER_SCALE_TOTAL = f"{PREFIX}_survey_other_scale_responses_total"

# -- the pipeline itself -----------------------------------------------------------------
CONSUMED_TOTAL = f"{PREFIX}_messages_consumed_total"  # labels: topic
EVENTS_TOTAL = f"{PREFIX}_events_total"  # labels: role, outcome=applied|duplicate|late
DEADLETTER_TOTAL = f"{PREFIX}_deadletter_messages_total"  # labels: reason
STREAM_TIME = f"{PREFIX}_stream_time_seconds"  # labels: role, partition
PROCESSING_DELAY = f"{PREFIX}_processing_delay_seconds"  # worker: now - last event time (debug)

# -- the exporter (`cxpulse exporter`: every partition, from the changelog) --------------
#: now - the latest instant at which every input message then present was applied
KPI_DELAY = f"{PREFIX}_kpi_delay_seconds"
#: event-time instant the windows are evaluated at (idle time advances it)
EVALUATION_TIMESTAMP = f"{PREFIX}_evaluation_timestamp_seconds"
EXPORTER_EVAL_SECONDS = f"{PREFIX}_exporter_evaluation_duration_seconds"
EXPORTER_PARTITIONS = f"{PREFIX}_exporter_partitions"
EXPORTER_RECORDS = f"{PREFIX}_exporter_changelog_records_total"
EXPORTER_CORRUPT = f"{PREFIX}_exporter_corrupt_records_total"
#: format-4 journal patches whose base the follower did not hold (skipped): only a
#: compacted log's stale slots carry them, so on a live follower any count is a bug
EXPORTER_STALE_PATCHES = f"{PREFIX}_exporter_stale_patches_total"
EXPORTER_BYTES = f"{PREFIX}_exporter_changelog_bytes_total"
CONSUMER_LAG = f"{PREFIX}_consumer_lag_messages"  # labels: topic, partition
LOST_TO_RETENTION_TOTAL = f"{PREFIX}_messages_lost_to_retention_total"  # labels: topic, partition
DEADLETTER_POINTERS_TOTAL = f"{PREFIX}_deadletter_pointers_total"  # labels: role, partition
LABEL_VALUES_CAPPED_TOTAL = f"{PREFIX}_label_values_capped_total"  # dimension, cap, partition
WORKER_PARTITIONS_OWNED = f"{PREFIX}_worker_partitions_owned"
LOCAL_STORE_REBUILDS_TOTAL = f"{PREFIX}_local_store_rebuilds_total"  # labels: partition, reason
LAST_PROCESSED = f"{PREFIX}_last_processed_timestamp_seconds"
#: 1 while the broker refuses the worker's credentials or TLS (probed while it runs)
KAFKA_AUTH_FAILING = f"{PREFIX}_kafka_auth_failing"
#: probes of the worker's credentials the broker refused
KAFKA_AUTH_FAILURES_TOTAL = f"{PREFIX}_kafka_auth_failures_total"

# -- the helpdesk gateway (`cxpulse ingest`) and the map stage (`cxpulse map`) -----------
#: webhook deliveries by vendor (zendesk|chatwoot|freshdesk|zammad|unknown) and outcome
#: (accepted|unauthorized|too_large|bad_content_type|bad_json|unknown_vendor|unavailable)
INGEST_DELIVERIES_TOTAL = f"{PREFIX}_ingest_deliveries_total"
#: seconds from handing a delivery to the producer to Kafka's acknowledgement
INGEST_PRODUCE_SECONDS = f"{PREFIX}_ingest_produce_seconds"
#: deliveries Kafka did not acknowledge in time (answered 503; the vendor retries)
INGEST_PRODUCE_FAILURES_TOTAL = f"{PREFIX}_ingest_produce_failures_total"
#: 1 while the gateway's producer is connected to Kafka (/healthz answers 200)
INGEST_KAFKA_UP = f"{PREFIX}_ingest_kafka_up"
#: raw deliveries the map stage read, by vendor and outcome (mapped|ignored|deadletter)
MAP_DELIVERIES_TOTAL = f"{PREFIX}_map_deliveries_total"
#: contract events the map stage produced, by vendor and type
MAP_EVENTS_TOTAL = f"{PREFIX}_map_events_total"
#: raw deliveries the map stage dead-lettered, by vendor and reason
MAP_DEADLETTER_TOTAL = f"{PREFIX}_map_deadletter_total"
