package jsonschema

import (
	"encoding/json"
	"testing"
)

// FuzzCompile: any schema compiles or is refused with an error, never a
// panic; what the automaton accepts as complete is valid JSON.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(personSchema), []byte(`{"name":"a","age":1,"ok":true}`))
	f.Add([]byte(`{"type":"array","items":{"enum":[1,"x",null,{"a":[]}]}}`), []byte(`[1,{"a":[]}]`))
	f.Add([]byte(`{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`), []byte(`1`))
	f.Fuzz(func(t *testing.T, schema, doc []byte) {
		n, err := Compile(schema)
		if err != nil {
			return
		}
		s, ok := Start(n).Bytes(doc)
		if ok && s.Complete() && !json.Valid(doc) {
			t.Fatalf("schema %s accepted %q, which is not JSON", schema, doc)
		}
	})
}
