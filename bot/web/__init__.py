"""Webhook mode (`baocao serve`): the ASGI app, its health and metrics endpoints, and its commands."""
