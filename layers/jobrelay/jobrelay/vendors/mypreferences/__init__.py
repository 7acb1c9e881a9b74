"""PossibleNOW MyPreferences bulk import (docs/VENDORS.md 2): params models (params), payloads, paths and
assumptions (api), the two auth schemes and the account secret (auth), HTTP (client) and the
VendorImports adapter (adapter) and what it registers (manifest). Import the submodule you need: this package imports nothing, so
loading the params for the API function does not load an HTTP client."""
