"""External transfers through Swift temp URLs, internal transfers as jobs on the xfer partition."""
