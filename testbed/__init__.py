"""What the tests, the bench and the soak start and drive: a stack of real
servers on loopback (nginx, the sidecar, slapd's clients, Redis) and the
polling they wait with. Not shipped: ``pip install`` takes ``sidecar/`` only."""
