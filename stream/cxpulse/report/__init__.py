"""`cxpulse report FILE`: the KPIs of a captured day in batch, with the live path's core
(`command`: reading, applying, printing; `summary`: the human summary's lines)."""
