"""``make bench`` (``python -m bench``): load measurements of the sidecar against baselines.

One run starts slapd with a generated school, nginx with the project's
include in front of the sidecar, and the baselines beside them, then measures
every case in turn (round-robin, so that noise on this machine hits all cases
alike) and writes ``bench/results/latest.json``, ``latest.md`` and
``latest.png``. Nothing here is shipped: the wheel holds ``sidecar`` only.
"""
