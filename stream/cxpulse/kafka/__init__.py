"""Kafka around the core: access (security settings, one-line diagnosis), start-up topic
checks, and the single-node broker launcher used by scripts/kafka, the demo and the tests."""
