"""Job pages of the portal: submit a batch script, list jobs live, follow a job's output, cancel."""
from flask import Blueprint

routes = Blueprint("jobs", __name__, url_prefix="/jobs")


@routes.get("/")
def index() -> str:
    return "jobs"
