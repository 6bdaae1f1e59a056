package proxy

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// WantsHTML reports whether the client is a browser navigating, judged by
// Accept: browsers ask for text/html first, API clients and XHR do not.
func WantsHTML(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html")
}

// WriteError answers with status and a FastAPI-style {"detail": code}, or a
// small HTML page for browsers. code is a constant, never client input.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r != nil && WantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		w.WriteHeader(status)
		_ = errorPage.Execute(w, struct {
			Status int
			Text   string
			Code   string
		}{status, http.StatusText(status), code})
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"detail":` + strconv.Quote(code) + "}\n"))
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Status}} {{.Text}}</title></head>
<body><h1>{{.Status}} {{.Text}}</h1><p>{{.Code}}</p></body></html>
`))
