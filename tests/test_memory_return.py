"""Memory a burst left free goes back to the system (sidecar.daemon.memory).

Checked in a child process, whose resident memory is its own: 100 MB of
buffers the size of request bodies and answers, all freed but the last one
(which keeps glibc from giving back the top of its heap by itself).
"""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import asyncio
from sidecar.daemon import memory

def resident_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

burst = [bytearray(4000) for _ in range(25_000)]
for buffer in burst:
    buffer[0] = 1
kept = burst[-1]
del burst
before = resident_mb()

async def one_round():
    task = asyncio.create_task(memory.return_free_memory(seconds=0.01))
    await asyncio.sleep(0.2)
    task.cancel()

asyncio.run(one_round())
print(before, resident_mb())
"""


def test_memory_a_burst_left_free_is_given_back() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = (float(word) for word in done.stdout.split())
    assert before - after > 50, (before, after)
