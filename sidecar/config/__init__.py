"""The settings: how a field is declared and read, the settings themselves, the resolved view."""
