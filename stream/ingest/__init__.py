"""`cxpulse ingest`: helpdesk webhooks in, raw deliveries to Kafka (`gateway.py`).

Imports only settings, kafkaconn, web and metric_names: never worker or exporter code.
"""
