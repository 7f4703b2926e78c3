"""Rate limits as HAProxy stick tables: per source before any RSA work, per verified user after the JWT check."""

from __future__ import annotations

from kong.haproxy_text import INVALID_PATH, NOT_FOUND, RATE_LIMITED, json_return
from kong.kong_yml import Gateway


def source_limit_and_path_rules(gw: Gateway) -> list[str]:
    period, limit = gw.per_source
    return [
        "",
        "    # Per-source flood limit, before any RSA work. As in Kong, only admitted requests count.",
        f"    {json_return(429, RATE_LIMITED, f'Retry-After {period}')} "
        f"if {{ src,table_http_req_rate(firecrest) ge {limit} }}",
        "    http-request track-sc0 src",
        "",
        "    # Only canonical paths are routed (the services would decode %XX and merge slashes after routing).",
        "    acl path_bad path_sub // /./ /../ %",
        "    acl path_bad path_end /. /..",
        # Kong normalises such a path first, and its `internal` route answers 404 for any service's /metrics.
        "    acl path_metrics path,url_dec -m reg /metrics(/|$)",
        f"    {json_return(404, NOT_FOUND)} if path_bad path_metrics",
        f"    {json_return(400, INVALID_PATH)} if path_bad",
    ]


def per_user_limits(gw: Gateway) -> tuple[list[str], list[str]]:
    """Frontend rules (sticky counters 1 and 2, on the verified sub) and one stick-table backend per window.

    The rate is looked up before the request is counted, so (as in Kong) refused requests do not count: a client
    that keeps hammering still gets `limit` requests per window through instead of none.
    """
    rules, tables = [], []
    for counter, (seconds, limit) in enumerate(sorted(gw.rate.items()), start=1):
        table = f"rate_sub_{seconds}s"
        rules += [f"    {json_return(429, RATE_LIMITED, f'Retry-After {seconds}')} "
                  f"if {{ var(txn.sub),table_http_req_rate({table}) ge {limit} }}",
                  f"    http-request track-sc{counter} var(txn.sub) table {table}"]
        tables += ["", f"backend {table}",
                   f"    stick-table type string len 128 size 100k expire {max(2 * seconds, 10)}s "
                   f"store http_req_rate({seconds}s)"]
    return (["", "    # Per-user rate limits (the verified sub).", *rules] if rules else []), tables
