package authn

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.1 document of Portero's own endpoints, with
// paths relative to the API prefix. openapi_test.go checks real answers
// against it, so a handler that changes its shape fails the build.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPIDocument returns the document with its server URL set to prefix
// (the api_prefix setting; "" serves at the root), as GET /openapi.json
// answers it.
func OpenAPIDocument(prefix string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		return nil, err
	}
	if prefix == "" {
		prefix = "/"
	}
	doc["servers"] = []map[string]string{{"url": prefix}}
	return json.MarshalIndent(doc, "", "  ")
}

// openAPI serves the document; it is public, like FastAPI's /openapi.json,
// because it describes only what any client may try. The document is
// rendered once, at registration.
func (h *Handlers) openAPI() echo.HandlerFunc {
	doc, err := OpenAPIDocument(h.cfg.APIPrefix)
	return func(c echo.Context) error {
		if err != nil {
			return err // the embedded file is checked by the tests; never at run time
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, "application/json", doc)
	}
}
