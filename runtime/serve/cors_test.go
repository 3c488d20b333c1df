package serve

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func send(t *testing.T, method, url string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestCORS follows the Fetch standard's CORS protocol as a browser does:
// a preflight (OPTIONS with Access-Control-Request-Method, no
// credentials) must get a 2xx with Allow-Origin, Allow-Methods and
// Allow-Headers covering the request, then the request itself must carry
// Allow-Origin.
func TestCORS(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	const origin = "https://app.example.com"
	preflight := map[string]string{
		"Origin":                         origin,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, content-type",
	}

	// Off by default: no CORS headers, a preflight is not answered.
	_, hs, _ := newServer(t, Config{})
	res, _ := send(t, "OPTIONS", hs.URL+"/v1/chat/completions", preflight, "")
	if res.StatusCode/100 == 2 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: preflight got %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}

	_, hs, _ = newServer(t, Config{CORSOrigins: []string{origin, "http://localhost:3000"}, APIKey: "k"})
	res, _ = send(t, "OPTIONS", hs.URL+"/v1/chat/completions", preflight, "")
	h := res.Header
	if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("preflight: %d %v", res.StatusCode, h)
	}
	// The request itself, with the key.
	res, body := send(t, "POST", hs.URL+"/v1/completions", map[string]string{"Origin": origin, "Authorization": "Bearer k"}, `{"prompt":"A computer","max_tokens":2,"temperature":0}`)
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(res.Header.Get("Vary"), "Origin") {
		t.Errorf("request: %d %v %s", res.StatusCode, res.Header, body)
	}
	// Errors carry it too, so that the page can read them.
	res, _ = send(t, "POST", hs.URL+"/v1/completions", map[string]string{"Origin": origin}, `{}`)
	if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("401: %d %v", res.StatusCode, res.Header)
	}
	// Another origin: a 403 preflight naming the flag, no Allow-Origin.
	preflight["Origin"] = "https://evil.example"
	res, body = send(t, "OPTIONS", hs.URL+"/v1/chat/completions", preflight, "")
	if res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d %v", res.StatusCode, res.Header)
	}
	checkError(t, body, "invalid_request_error", "", "cors_origin_not_allowed", "--cors-origin https://evil.example")

	// "*" without a key allows any origin with the wildcard.
	_, hs, _ = newServer(t, Config{CORSOrigins: []string{"*"}})
	res, _ = send(t, "OPTIONS", hs.URL+"/v1/models", preflight, "")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("*: %d %v", res.StatusCode, res.Header)
	}
}
