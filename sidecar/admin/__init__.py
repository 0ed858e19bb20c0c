"""The admin commands (check-config, test-login, mint) and the checks they run."""
