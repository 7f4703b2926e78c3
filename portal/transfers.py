"""Large transfer pages of the portal: upload straight to the temp URL, download by link, invalidate."""
from flask import Blueprint

routes = Blueprint("transfers", __name__, url_prefix="/transfers")


@routes.get("/")
def index() -> str:
    return "transfers"
