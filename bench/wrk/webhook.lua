-- wrk script: POSTs a mention to the webhook of examples/workflows/mention-intake.yaml, which
-- replies with its `verdict` step's output. Used by scripts/bench-serve.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"author": "@sam", "text": "Your app is down again!", "followers": 12000}'

done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f\np50_ms %.2f\np99_ms %.2f\nerrors %d\nnon2xx %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.errors.status))
end
