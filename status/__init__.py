"""Health of the gateway's services, the systems and their filesystems, and the public parameters."""
