"""Services: the logic behind handlers and the CLI, with sessions and time passed in."""
