"""The school's LDAP directory: connections, servers, binds."""
