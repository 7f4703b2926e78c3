"""kong.yml (the gateway's routes and plugins) and its HAProxy renderer for the embedded site."""
