package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestServeParallel is issue 14's done-when test through the command:
// `minerva serve --parallel 4` with 4 concurrent greedy streams returns,
// for each, exactly the text it returns alone.
func TestServeParallel(t *testing.T) {
	_, addr, stderr, stop := launchServe(t, "serve", "--addr", "127.0.0.1:0", "--ctx", "256", "--parallel", "4")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	stream := func(prompt string) (string, error) {
		body := fmt.Sprintf(`{"prompt":%q,"max_tokens":40,"ignore_eos":true,"temperature":0,"stream":true}`, prompt)
		res, err := client.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %s", res.Status)
		}
		var text strings.Builder
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var c struct{ Choices []struct{ Text string } }
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				return "", err
			}
			if len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Text)
			}
		}
		return text.String(), sc.Err()
	}
	prompts := []string{"A computer", "The best way to", "Never trust", "Q: Why did the programmer quit?\nA:"}
	alone := make([]string, len(prompts))
	for i, p := range prompts {
		var err error
		if alone[i], err = stream(p); err != nil {
			t.Fatal(err)
		}
	}
	together := make([]string, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Go(func() { together[i], errs[i] = stream(p) })
	}
	wg.Wait()
	for i := range prompts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if together[i] != alone[i] || alone[i] == "" {
			t.Errorf("%q: together %q, alone %q", prompts[i], together[i], alone[i])
		}
	}
	if err := stop(); err != nil {
		t.Errorf("serve returned %v", err)
	}
	if !strings.Contains(stderr.String(), "4 requests at once") {
		t.Errorf("stderr %q does not say 4 requests run at once", stderr.String())
	}
}
