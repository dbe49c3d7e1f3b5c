package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the API. A test keeps its paths,
// methods, parameters and security equal to the routes a Server serves.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI answers GET /api/v1/openapi.json. It needs no token: the
// document describes the API, it gives nothing of the fleet away.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
