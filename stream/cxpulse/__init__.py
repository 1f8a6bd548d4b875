"""cxpulse: live support KPIs from Kafka events.

The package is split into a pure core (`cxpulse.core`: events, ticket state,
KPI math, time slices, sketches; no I/O) and a thin shell around it (faust
worker, metrics exporter, CLI, simulator) that only moves data.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
