"""make soak: minutes of mixed load while the directory dies, comes back and slows down."""
