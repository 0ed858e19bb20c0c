"""The garbage collector, once the daemon has started.

Everything built at start-up (modules, templates, settings, the app and its
resources: some 50,000 objects that live as long as the process) would be
walked again by every full collection, whose pause every request waiting at
that moment shares. Collected once and frozen before the first request,
they are left out of every later collection: a full collection walks only
what requests made since, and the per-key tables of the daemon hold nothing
it tracks (see :mod:`sidecar.sliding_counter`).
"""

from __future__ import annotations

import gc


def settle_after_start() -> None:
    """Collect what start-up left behind, then leave the rest out of every later collection."""
    gc.collect()
    gc.freeze()
