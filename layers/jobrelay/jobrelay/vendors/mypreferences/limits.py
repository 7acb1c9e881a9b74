"""MyPreferences' documented sizes, in a module of their own: the params model (loaded by the API and
schedule functions at cold start) needs them, and api.py is not cheap to load."""

# docs/VENDORS.md 2.3.2: "25 MB default, 28 MB maximum, per POST", about 10 million records per import,
# no per-request record count. "MB" is read as 10**6 bytes, the smaller reading, so that a batch
# fits whichever unit MyPreferences means.
MB = 1_000_000
STAGE_BYTES_DEFAULT = 25 * MB
STAGE_BYTES_MAX = 28 * MB
STAGE_BYTES_MIN = 1 * MB  # ours: smaller requests would only multiply the calls
MAX_RECORDS_PER_IMPORT = 10_000_000
