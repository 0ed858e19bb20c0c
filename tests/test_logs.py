"""The decision lines: written whole, once per turn of the event loop."""

from __future__ import annotations

import asyncio
import io

from sidecar.logs import ATOMIC_WRITE_BYTES, DecisionLog


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def test_lines_come_out_in_pieces_a_pipe_writes_whole() -> None:
    stream = Recording()
    log = DecisionLog("plain", stream=stream)
    for number in range(200):
        log.write("decision", user=f"user{number}", reason="x" * 100)
    assert stream.writes == []  # not yet: once per turn of the loop
    await asyncio.sleep(0)
    assert len(stream.writes) > 1
    for piece in stream.writes:
        assert len(piece.encode()) <= ATOMIC_WRITE_BYTES
        assert piece.endswith("\n")
    lines = stream.getvalue().splitlines()
    assert [line.split(" user=")[1].split()[0] for line in lines] == [
        f"user{number}" for number in range(200)
    ]


def test_a_loop_that_ended_before_its_flush_does_not_silence_the_next() -> None:
    stream = Recording()
    log = DecisionLog("json", stream=stream)

    async def write_and_stop() -> None:
        log.write("decision", user="first")
        asyncio.get_running_loop().stop()

    loop = asyncio.new_event_loop()
    task = loop.create_task(write_and_stop())
    loop.run_forever()  # stops before the scheduled flush runs
    assert task.done()
    loop.close()

    async def write() -> None:
        log.write("decision", user="second")
        await asyncio.sleep(0)

    asyncio.run(write())
    assert '"user": "first"' in stream.getvalue()
    assert '"user": "second"' in stream.getvalue()
