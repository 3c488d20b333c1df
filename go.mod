module github.com/minerva-ml/minerva

// Go 1.27.3: govulncheck finds reachable standard-library vulnerabilities in
// go1.26.8 (net/http GO-2026-6603, 6611, 6612, 6613, 6617; net/textproto
// 6608; crypto/tls 6607; crypto/x509 6809). Export GOTOOLCHAIN=go1.27.3.
go 1.27.3

require (
	github.com/alecthomas/kong v1.17.0
	github.com/alecthomas/participle/v2 v2.1.4
	github.com/dave/jennifer v1.7.1
	github.com/ebitengine/purego v0.11.3
	github.com/nlpodyssey/safetensors v0.0.0-20250209183917-bfb01cc25f7c
	github.com/openai/openai-go/v3 v3.98.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/tidwall/gjson v1.20.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.1 // indirect
	github.com/tidwall/sjson v1.2.5 // indirect
)
