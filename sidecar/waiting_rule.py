"""Who waits for a room: teachers never do; the others while it is not open.

Whether a room is open costs a request to Prosody (paid from the asker's
own budget, :mod:`sidecar.jitsi.room_budget`), so one request asks it at
most once, however often its decision needs the answer.
"""

from __future__ import annotations

from sidecar.config.settings import RoleRule
from sidecar.jitsi.room_size import Asker, RoomSize
from sidecar.rooms import RoomRequest


class WaitingRule:
    """The waiting rule for one request for ``room``; ``room_size`` None: nobody waits."""

    def __init__(self, room_size: RoomSize | None, room: RoomRequest, asker: Asker) -> None:
        self._room_size = room_size
        self._room = room
        self._asker = asker
        self._open: bool | None = None

    async def must_wait(self, rule: RoleRule) -> bool:
        if rule.moderator or self._room_size is None:
            return False
        if self._open is None:
            self._open = await self._room_size.is_open(
                self._room.backend_name, self._room.tenant, self._asker
            )
        return not self._open
