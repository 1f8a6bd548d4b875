"""`cxpulse map`: the stream stage from raw helpdesk deliveries to contract events
(`stage.py` says why it is a stage of its own). Vendor logic is `cxpulse.helpdesks`."""
