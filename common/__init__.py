"""The one library shared by every service of the gateway."""
