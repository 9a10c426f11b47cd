"""One scenario's k6 summary (--summary-export JSON) in a few lines: traffic, latency, the
scenario's own counters, and each threshold with PASS/FAIL.

    python3 loadtest/summary.py target/loadtest/<run>/<scenario>.json <scenario> [ROW_FILE]

With ROW_FILE, the scenario's cells of the Markdown table in docs/performance.md are written
there too (scenario, requests, k6 p50 / p99, counters, thresholds).
"""
import json
import sys

BUILTIN = ("http_", "iteration", "vus", "data_", "checks", "unexpected_status")


def main(path, name, row_file=None):
    metrics = json.load(open(path))["metrics"]
    reqs = metrics.get("http_reqs", {})
    dur = metrics.get("http_req_duration", {})
    unexpected = metrics.get("unexpected_status", {}).get("value", 0.0)
    print(
        f"{name:<16} {reqs.get('count', 0):>8,} requests  {reqs.get('rate', 0):>7,.0f} req/s  "
        f"p50 {dur.get('p(50)', 0):6.2f} ms  p99 {dur.get('p(99)', 0):7.2f} ms  "
        f"unexpected {unexpected:.3%}"
    )
    counters = [
        f"{k}={int(v['count'])}"
        for k, v in sorted(metrics.items())
        if "count" in v and not k.startswith(BUILTIN)
    ]
    if counters:
        print(f"{'':<16} {'  '.join(counters)}")
    verdicts = []
    for metric, v in sorted(metrics.items()):
        for rule, crossed in v.get("thresholds", {}).items():
            observed = observed_value(v, rule)
            verdict = "FAIL" if crossed else "PASS"
            verdicts.append(verdict)
            print(f"{'':<16} {verdict}  {metric} {rule}  (observed {observed})")
    if row_file:
        passed = verdicts.count("PASS")
        with open(row_file, "w") as row:
            row.write(
                f"{name}|{reqs.get('count', 0):,} at {reqs.get('rate', 0):,.0f} req/s|"
                f"{dur.get('p(50)', 0):.2f} / {dur.get('p(99)', 0):.2f} ms|"
                f"{', '.join(counters) or '-'}; unexpected {unexpected:.3%}|"
                f"{passed} of {len(verdicts)} met\n"
            )


def observed_value(values, rule):
    """The statistic a threshold rule looks at (`p(99)<200` → p(99))."""
    stat = rule.split("<")[0].split(">")[0].split("=")[0].strip()
    if stat == "rate" and "value" in values:
        return f"{values['value']:.4f}"
    got = values.get(stat)
    return f"{got:.2f}" if isinstance(got, float) else str(got)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else sys.argv[1], *sys.argv[3:4])
