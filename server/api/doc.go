// Package api is gitfleet-server's HTTP API: the fleet's status from the
// store (devices with filters and cursor pagination, their event history,
// releases with their Git provenance, channels with their rollout state),
// operators' actions on rollouts (pause, resume, abort, promote), the Git
// webhook, the OpenAPI document, health and readiness probes and Prometheus
// metrics.
//
// A Server is an http.Handler. It reads the store itself and leaves every
// change to interfaces the server's wiring implements: a Controller applies
// pause, resume and abort through the rollout engine, a Promoter commits a
// promotion to fleet.yaml, a Trigger makes the Git watcher poll at once and a
// Reporter gives a channel's latest rollout evaluation. Whatever the wiring
// leaves out answers 501 not_configured.
//
// Requests to /api/v1 carry a bearer token whose scopes allow the route:
// read for every GET, release to promote, admin to pause, resume and abort.
// Tokens lists the tokens by the SHA-256 of their secret, so a token file
// gives no token away. The webhook is authenticated by its HMAC-SHA256
// signature instead; /healthz, /readyz, /metrics and the OpenAPI document
// need nothing. API.md beside this file gives the routes, the error codes
// and the token file format.
//
// Every answer is JSON, failures included: {"error": "...", "code": "..."},
// one line, with a code from apiclient's table. Every request gets an id,
// taken from X-Request-Id when the caller sends a sane one, that the answer
// echoes and the access log records.
package api
