"""Pinpointe (docs/VENDORS.md 1): params models (params), payloads and assumptions (api), HTTP (client)
the adapters of its two kinds of operation (adapter) and what it registers (manifest). Import the submodule you need: this package imports nothing,
so loading the params for the API function does not load an HTTP client."""
