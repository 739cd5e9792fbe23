"""The key of a draft's write counter in `Draft.seen`, apart from the reports service so that the accounts
service (and every command that looks a commune up) need not import the engine and the templates."""

from __future__ import annotations

REV = "_rev"  # key in Draft.seen: the row's write counter, bumped by every save and compared by it
