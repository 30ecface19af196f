"""How `login` and `whoami` show a token's expiry."""

from __future__ import annotations

import datetime as dt
import time


def describe_expiry(epoch: float | None) -> str:
    """E.g. "valid until 2025-01-02 10:00 UTC (3.5 h)", "expired ... (refreshed on next use)" or "no stated expiry"."""
    if epoch is None:
        return "no stated expiry"
    left = epoch - time.time()
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if left <= 0:
        return f"expired {stamp} (refreshed on next use)"
    span = (f"{left / 86400:.1f} d" if left >= 86400 else f"{left / 3600:.1f} h" if left >= 5400 else
            f"{left / 60:.0f} min" if left >= 120 else f"{left:.0f} s")
    return f"valid until {stamp} ({span})"
