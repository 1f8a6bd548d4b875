"""The live shell around the core: two runtimes (direct aiokafka loop, faust agent), one
persistence scheme, the Prometheus exporter and the `cxpulse worker` command."""
