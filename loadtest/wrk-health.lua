-- wrk script: GET /health, printing the same RESULT line as wrk-issue.lua.

function response(status, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p99_ms=%.2f p50_ms=%.2f errors=%d statuses=%s\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    latency:percentile(50) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
      + summary.errors.status,
    "-"))
end
