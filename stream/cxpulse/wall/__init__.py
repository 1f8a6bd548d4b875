"""`cxpulse wall`: the live wall for a TV, served without Grafana (see server.py)."""
