"""The task store (Redis) and its public read API."""
