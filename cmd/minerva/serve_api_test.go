package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// startServe serves `minerva serve --addr 127.0.0.1:0 --ctx 256 ARGS`
// until the test ends; it returns the base URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	_, addr, _, stop := launchServe(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--ctx", "256"}, args...)...)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return "http://" + addr
}

func get(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestServeModelID: the id is the model directory's base name, not the
// path as typed; --alias replaces it.
func TestServeModelID(t *testing.T) {
	// A path with a trailing slash and a dot-dot: the id is still the
	// directory's name.
	url := startServe(t, "--model", "../../models/fortune/")
	if _, body := get(t, "GET", url+"/v1/models", nil); !strings.Contains(body, `"id":"fortune"`) {
		t.Errorf("/v1/models: %s", body)
	}
	url = startServe(t, "--alias", "gpt-4o-mini")
	if _, body := get(t, "GET", url+"/v1/models", nil); !strings.Contains(body, `"id":"gpt-4o-mini"`) {
		t.Errorf("--alias: /v1/models: %s", body)
	}
	if res, _ := get(t, "GET", url+"/v1/models/gpt-4o-mini", nil); res.StatusCode != 200 {
		t.Errorf("GET /v1/models/gpt-4o-mini: %d", res.StatusCode)
	}
}

// TestServeCORSFlag: --cors-origin is repeatable and not split on
// commas; a preflight from a named origin is answered.
func TestServeCORSFlag(t *testing.T) {
	url := startServe(t, "--cors-origin", "http://localhost:3000", "--cors-origin", "https://app.example.com")
	for _, origin := range []string{"http://localhost:3000", "https://app.example.com"} {
		res, _ := get(t, "OPTIONS", url+"/v1/chat/completions", map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST"})
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight from %s: %d %v", origin, res.StatusCode, res.Header)
		}
	}
	res, _ := get(t, "OPTIONS", url+"/v1/chat/completions", map[string]string{"Origin": "http://other", "Access-Control-Request-Method": "POST"})
	if res.StatusCode != 403 {
		t.Errorf("preflight from another origin: %d", res.StatusCode)
	}
}
