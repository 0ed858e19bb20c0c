"""``make test-jitsi``: the sidecar's tokens against a real Prosody running Jitsi's own plugins.

Debian's prosody, configured the way jitsi-meet-prosody and jitsi-meet-tokens
configure a Jitsi host, is started on loopback with the plugin folders given on
the command line; the sidecar runs behind nginx (``testbed.stack``); a small
XMPP client joins rooms over Prosody's websocket the way the web app does.
Not part of ``make test``: the plugins are not in this repository.
"""
