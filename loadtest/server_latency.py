"""Server-side latency of a load run, from the api's own histogram: the difference of
`http_request_duration_seconds` between two scrapes of /metrics, per route, as request count and
the bucket bound under which 50 % and 99 % of the requests finished. k6's figures include its own
queueing on a shared machine; these do not.

    python3 loadtest/server_latency.py before.prom after.prom
"""
import re
import sys
from collections import defaultdict

LINE = re.compile(
    r'^http_request_duration_seconds_bucket\{method="(\w+)",route="([^"]+)",le="([^"]+)"\} (\S+)$'
)


def buckets(path):
    out = defaultdict(dict)
    for line in open(path):
        m = LINE.match(line.strip())
        if m:
            method, route, le, count = m.groups()
            out[f"{method} {route}"][float(le)] = float(count)
    return out


def quantile(cumulative, q):
    total = cumulative[-1][1]
    for bound, count in cumulative:
        if count >= q * total:
            return bound
    return float("inf")


def fmt(seconds):
    if seconds == float("inf"):
        return "> 10 s"
    return f"≤ {seconds * 1000:g} ms"


def main(before_path, after_path, row_file=None):
    """Prints each route's server-side p50/p99; with ROW_FILE, also writes the busiest route's
    p99 there (a cell of the Markdown table in docs/performance.md)."""
    before, after = buckets(before_path), buckets(after_path)
    busiest = (0, "-")
    for route, les in sorted(after.items()):
        cumulative = [(le, n - before.get(route, {}).get(le, 0.0)) for le, n in sorted(les.items())]
        total = cumulative[-1][1]
        if total < 1 or route.startswith("GET /metrics"):
            continue
        print(
            f"{'':<16} server {route}: {int(total):,} requests, "
            f"p50 {fmt(quantile(cumulative, 0.5))}, p99 {fmt(quantile(cumulative, 0.99))}"
        )
        if total > busiest[0]:
            busiest = (total, f"{fmt(quantile(cumulative, 0.99))} ({route})")
    if row_file:
        with open(row_file, "w") as row:
            row.write(busiest[1])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *sys.argv[3:4])
