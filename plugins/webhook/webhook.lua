-- The webhook plugin: webhook.send POSTs a JSON payload to any URL, signed with HMAC-SHA256 in
-- the scheme Herald's own webhook triggers verify (engine/security/hmac.h):
--   X-Herald-Timestamp: <Unix seconds>
--   X-Herald-Signature: sha256=<hex(HMAC-SHA256(key, "<timestamp>.<body>"))>
--   Idempotency-Key:    the run's key for this step (the same on every retry)
-- The body is signed byte for byte as sent. See docs/plugins/webhook.md.
return {
  name = "webhook",
  version = "1.0.0",
  description = "Sends signed JSON webhooks (HMAC-SHA256 over timestamp and body)",
  capabilities = {
    send = {
      kind = "step",
      description = "POSTs a JSON payload to a URL with an HMAC-SHA256 signature",
      input = {
        type = "object",
        required = { "url", "payload" },
        properties = {
          url = { type = "string", description = "Where to send the webhook (http or https)" },
          payload = { description = "Any JSON value: the body" },
          secret = {
            type = "string",
            description = "Name of the secret holding the signing key (default WEBHOOK_SIGNING_KEY)",
          },
          event = { type = "string", description = "Sent as X-Herald-Event" },
          headers = { type = "object", additionalProperties = { type = "string" } },
          timeout = { type = "string", description = "e.g. 10s (the http step's default otherwise)" },
        },
      },
      run = function(input)
        local name = input.secret or "WEBHOOK_SIGNING_KEY"
        local key, err = herald.secret(name)
        if not key then
          return nil, {
            code = "failed_precondition",
            message = "webhook: the signing key secret '" .. name .. "' is not set for this workspace"
              .. " (herald secret set " .. name .. ")",
          }
        end
        local body = herald.json.encode(input.payload)
        local timestamp = tostring(herald.now())
        local headers = {}
        for header, value in pairs(input.headers or {}) do headers[header] = value end
        headers["Content-Type"] = "application/json"
        headers["X-Herald-Timestamp"] = timestamp
        headers["X-Herald-Signature"] = "sha256=" .. herald.crypto.hmac_sha256(key, timestamp .. "." .. body)
        if input.event then headers["X-Herald-Event"] = input.event end
        local response, failure = herald.http {
          method = "POST",
          url = input.url,
          headers = headers,
          body = body,
          timeout = input.timeout,
          idempotency = true,
        }
        if not response then return nil, failure end -- keeps code, retryable and retry_after_ms
        return { status = response.status, timestamp = timestamp, body = response.body }
      end,
    },
  },
}
