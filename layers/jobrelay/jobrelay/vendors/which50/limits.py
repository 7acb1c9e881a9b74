"""Which50's documented sizes and the contact id's field name, in a module of their own: the params
model (loaded by the API and schedule functions at cold start) needs them, and api.py, with its
answer models, is not cheap to load (bench/cold_start.py)."""

# docs/VENDORS.md 3.3 step 2, 3.6: "up to 10,000 contacts per request". No byte limit is documented;
# IIS refuses request bodies over 30,000,000 bytes by default, so batches also stay under 25 MB.
MAX_CONTACTS_PER_BATCH = 10_000
MAX_BATCH_BYTES = 25_000_000

# docs/VENDORS.md 3.6: the field that names an existing contact (an update) rather than a new one.
ENC_CONTACT_ID = "EncContactId"
