"""The admin commands (check-config, test-login, mint, setup) and the checks they run."""
