"""Test support: a recording Bot API request, update builders and data factories."""
