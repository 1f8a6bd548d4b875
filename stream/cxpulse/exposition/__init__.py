"""Prometheus exposition of an evaluation: metric families from KPI values (pure)."""
