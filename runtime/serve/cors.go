package serve

import (
	"net/http"
	"slices"
	"strings"
)

// CORS lets browser pages on other origins call the API. It is off
// unless Config.CORSOrigins names origins ("https://app.example.com", or
// "*" for any). For an allowed origin every response carries
// Access-Control-Allow-Origin, and a preflight (OPTIONS with
// Access-Control-Request-Method) is answered 204 before the API key is
// checked, since browsers send preflights without credentials. A
// preflight from another origin gets a 403 that names the flag.

// corsMaxAge is how long (seconds) a browser may cache a preflight.
const corsMaxAge = "86400"

// cors sets the CORS headers for r and reports whether it answered r
// (a preflight).
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(s.cfg.CORSOrigins) == 0 {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	wildcard := slices.Contains(s.cfg.CORSOrigins, "*")
	allowed := wildcard || slices.Contains(s.cfg.CORSOrigins, origin)
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !allowed {
		if preflight {
			writeError(w, &apiError{Status: http.StatusForbidden, Type: "invalid_request_error", Code: str("cors_origin_not_allowed"),
				Message: "the origin " + origin + " may not call this server; start it with --cors-origin " + origin})
			return true
		}
		return false
	}
	if wildcard && s.cfg.APIKey == "" {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if !preflight {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	reqHeaders := r.Header.Get("Access-Control-Request-Headers")
	if reqHeaders == "" {
		reqHeaders = "Authorization, Content-Type"
	}
	h.Set("Access-Control-Allow-Headers", strings.TrimSpace(reqHeaders))
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
