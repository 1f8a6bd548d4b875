"""The pure core: no I/O, no clocks, no faust. Everything here is deterministic."""
