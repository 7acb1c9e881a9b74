"""One package per vendor: its params models, payload models, status table, client and assumptions."""
