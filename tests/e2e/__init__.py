"""End-to-end tests: the real `baocao run` process against the Bot API emulator."""
