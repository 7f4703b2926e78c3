"""The web portal: a Flask app on the public API (through the gateway) with the signed-in user's token."""
