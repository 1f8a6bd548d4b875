"""The support-operation simulator behind `cxpulse simulate`, importable without the CLI.

`model` draws the clean operation (`Simulation(cfg).events()`), `dirt` turns
it into Kafka messages with optional duplicates, disorder and malformed
messages (`generate(cfg)`), `params` holds the tuned parameters.
"""
