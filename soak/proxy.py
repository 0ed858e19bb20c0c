"""A TCP proxy in front of slapd that can make every answer late, as a slow
directory would; it runs its own event loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from demo.ports import free_port

CHUNK_BYTES = 65536


class DelayingProxy:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.delay = 0.0  # seconds added to every answer from the directory
        # Off while slapd is stopped: dialling a port nobody listens on, over and
        # over, can end in a connection to itself (Linux picks the same port as
        # the source), which would keep slapd from listening there again.
        self.forwarding = True
        # Answers held back at once, now and at most so far: requests a client
        # had under way side by side while the directory was slow.
        self.held = 0
        self.most_held = 0
        # Connections made through it: with a pool already open, one per bind.
        self.connections = 0
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> DelayingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            # Connections still piped are ended here, in this loop: left to the
            # collector their streams would warn (an error in the tests).
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())

    async def _connection(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            if not self.forwarding:
                raise ConnectionRefusedError
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self._target_port)
            self.connections += 1
        except OSError:
            client_out.close()  # the directory is down: so is the way to it
            return
        pipes = {
            asyncio.ensure_future(self._pipe(client_in, server_out, slow=False)),
            asyncio.ensure_future(self._pipe(server_in, client_out, slow=True)),
        }
        # Either side closing closes both: a half-open connection to a stopped
        # slapd would keep its port from being listened on again.
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The proxy stops. Ended quietly: asyncio's stream server asks a
            # cancelled connection task for its exception, and logs the answer.
            pass
        finally:
            for pipe in pipes:
                pipe.cancel()
            client_out.close()
            server_out.close()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, slow: bool
    ) -> None:
        with contextlib.suppress(OSError):
            # Forwarding off ends the connections already made too: the
            # directory is down from then on, pooled connections included.
            while (chunk := await source.read(CHUNK_BYTES)) and self.forwarding:
                if slow and self.delay:
                    self.held += 1
                    self.most_held = max(self.most_held, self.held)
                    try:
                        await asyncio.sleep(self.delay)
                    finally:
                        self.held -= 1
                sink.write(chunk)
                await sink.drain()
