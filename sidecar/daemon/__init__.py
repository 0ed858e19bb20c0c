"""The process: systemd's socket and notifications, descriptors, workers, the collector."""
