"""Which50 contact-list imports (docs/VENDORS.md 3): api (payloads, status table, assumptions), params,
contacts (record checks and encoding), client (HTTP and the account secret), adapter (VendorImports), manifest (what it registers)."""
