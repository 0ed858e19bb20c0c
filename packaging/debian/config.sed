# config.example.toml -> /etc/jitsi-auth-sidecar/config.toml in the package:
# the secrets come in as systemd credentials (LoadCredential= in the unit,
# from the files of the same names in /etc/jitsi-auth-sidecar), so their
# *_file keys go.
\|^app_secret_file = "/etc/jitsi-auth-sidecar/app_secret"$|d
\|^bind_password_file = "/etc/jitsi-auth-sidecar/ldap_password"$|d
\|^keys_file = "/etc/jitsi-auth-sidecar/session_keys"$|d
\|^keys_file = "/etc/jitsi-auth-sidecar/guest_keys"$|d
