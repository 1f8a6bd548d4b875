"""`cxpulse ingest`: helpdesk webhooks in, raw deliveries to Kafka (`gateway.py`).

Imports only settings, kafka, web and metric_names: never worker or exporter code.
"""
