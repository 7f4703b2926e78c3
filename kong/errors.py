"""The renderer's one error, shared by every step from reading kong.yml to writing haproxy.cfg."""


class RenderError(Exception):
    """kong.yml uses something this renderer cannot express in HAProxy, or a value is missing."""
