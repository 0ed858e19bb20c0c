"""A throwaway school to try the sidecar against: a real slapd, a real nginx."""
