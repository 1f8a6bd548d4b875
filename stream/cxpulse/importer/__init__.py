"""`cxpulse import`: helpdesk history (exports, recorded webhooks) -> contract events, with
the ids of the live path, so backfill and webhooks meet in the same windows uncounted twice."""
