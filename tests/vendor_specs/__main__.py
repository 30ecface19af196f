"""`python -m tests.vendor_specs`: copy ../shared/vendor-specs/ into the repository (gzip'd)."""

from tests.vendor_specs import NAMES, refresh

refresh()
print(f"refreshed {len(NAMES)} spec copies from ../shared/vendor-specs/")
