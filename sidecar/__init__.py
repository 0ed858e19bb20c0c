"""jitsi-auth-sidecar: LDAP login in front of Jitsi Meet rooms, for nginx auth_request."""

__version__ = "0.1.0"
