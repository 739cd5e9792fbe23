"""The alphabet of the codes people type or read back: invite codes and receipts (no I, L, O, U)."""

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
