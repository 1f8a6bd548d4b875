"""Monitoring mixin: alert rules and dashboards generated from `targets.yaml`."""
