// Package jsonschema compiles a JSON Schema (the subset llama.cpp's
// json-schema-to-grammar handles: objects, required, arrays, enums and
// const, strings, numbers, integers, booleans, null, nesting and $ref to
// definitions) into a byte-level automaton, and masks a tokenizer's
// vocabulary with it: at every step of generation, only tokens whose
// bytes keep the output a prefix of a JSON text that matches the schema
// may be sampled (Masker). Any other schema keyword is refused by name.
//
// The output is compact JSON: no whitespace between tokens, properties in
// the schema's order, every required property present and no others
// (OpenAI's strict mode). Strings may hold any character, escaped as JSON
// requires; their UTF-8 is checked.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

type kind uint8

const (
	kindAny    kind = iota // any JSON value (json_object's members)
	kindObject             // with properties
	kindAnyObject
	kindArray
	kindString
	kindNumber
	kindInteger
	kindBool
	kindNull
	kindLiterals // enum or const: the values' compact JSON
	kindHeads    // OneOf: one of heads, then its body, then tail
)

// Node is a compiled schema.
type Node struct {
	kind  kind
	props []prop // kindObject, in the schema's order
	items *Node  // kindArray
	lits  [][]byte
	// kindHeads: lits are the heads, bodies[i] follows lits[i] (nil for
	// nothing), then tail.
	bodies []*Node
	tail   []byte
}

type prop struct {
	key      []byte // `"name":`
	node     *Node
	required bool
}

// Error is a schema Minerva cannot enforce; Path is where (a JSON
// pointer) and Keyword what.
type Error struct {
	Path, Keyword, Msg string
}

func (e *Error) Error() string {
	if e.Keyword != "" {
		return fmt.Sprintf("%s: keyword %q is not supported (%s)", e.Path, e.Keyword, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// annotations describe a schema without constraining it: they are
// accepted and ignored.
var annotations = map[string]bool{"description": true, "title": true, "default": true, "examples": true, "$schema": true, "$comment": true, "$id": true}

// AnyObject is json_object's grammar: any JSON object.
func AnyObject() *Node { return &Node{kind: kindAnyObject} }

// Compile compiles a schema given as JSON.
func Compile(schema []byte) (*Node, error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err == nil {
		if _, e := dec.Token(); e == nil {
			err = fmt.Errorf("text after the schema")
		}
	}
	root, ok := v.(*omap)
	if err != nil || !ok {
		msg := "the schema is not a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, &Error{Path: "#", Msg: msg}
	}
	c := &compiler{root: root, refs: map[string]*Node{}}
	return c.node(root, "#")
}

type compiler struct {
	root *omap
	refs map[string]*Node
}

func (c *compiler) node(o *omap, path string) (*Node, error) {
	s := o.m
	keys := append([]string(nil), o.keys...)
	sort.Strings(keys) // the first unsupported keyword, deterministically
	for _, k := range keys {
		switch k {
		case "type", "properties", "required", "items", "enum", "const", "$ref", "definitions", "$defs", "additionalProperties":
		default:
			if !annotations[k] {
				return nil, &Error{Path: path, Keyword: k, Msg: "supported: type, properties, required, items, enum, const, $ref, definitions, $defs, additionalProperties: false"}
			}
		}
	}
	if ref, ok := s["$ref"]; ok {
		r, ok := ref.(string)
		if !ok {
			return nil, &Error{Path: path + "/$ref", Msg: "$ref must be a string"}
		}
		return c.ref(r, path)
	}
	if v, ok := s["const"]; ok {
		return literals([]any{v}), nil
	}
	if v, ok := s["enum"]; ok {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, &Error{Path: path + "/enum", Msg: "enum must be a non-empty array"}
		}
		return literals(list), nil
	}
	if ap, ok := s["additionalProperties"]; ok && ap != false {
		return nil, &Error{Path: path, Keyword: "additionalProperties", Msg: "only false is supported: the output holds exactly the listed properties"}
	}
	t, _ := s["type"].(string)
	if _, ok := s["type"]; ok && t == "" {
		return nil, &Error{Path: path + "/type", Msg: "type must be one string (a list of types is not supported)"}
	}
	if t == "" {
		switch {
		case s["properties"] != nil:
			t = "object"
		case s["items"] != nil:
			t = "array"
		default:
			return &Node{kind: kindAny}, nil
		}
	}
	switch t {
	case "string":
		return &Node{kind: kindString}, nil
	case "number":
		return &Node{kind: kindNumber}, nil
	case "integer":
		return &Node{kind: kindInteger}, nil
	case "boolean":
		return literals([]any{true, false}), nil
	case "null":
		return &Node{kind: kindNull, lits: [][]byte{[]byte("null")}}, nil
	case "array":
		n := &Node{kind: kindArray, items: &Node{kind: kindAny}}
		if it, ok := s["items"]; ok {
			m, ok := it.(*omap)
			if !ok {
				return nil, &Error{Path: path + "/items", Msg: "items must be a schema object"}
			}
			items, err := c.node(m, path+"/items")
			if err != nil {
				return nil, err
			}
			n.items = items
		}
		return n, nil
	case "object":
		props, _ := s["properties"].(*omap)
		if props == nil || len(props.keys) == 0 {
			return &Node{kind: kindAnyObject}, nil
		}
		return c.object(s, props, path)
	}
	return nil, &Error{Path: path + "/type", Msg: fmt.Sprintf("unknown type %q", t)}
}

func (c *compiler) object(s map[string]any, props *omap, path string) (*Node, error) {
	required := map[string]bool{}
	if r, ok := s["required"]; ok {
		list, ok := r.([]any)
		if !ok {
			return nil, &Error{Path: path + "/required", Msg: "required must be an array of names"}
		}
		for _, v := range list {
			name, ok := v.(string)
			if !ok {
				return nil, &Error{Path: path + "/required", Msg: "required must be an array of names"}
			}
			if _, ok := props.m[name]; !ok {
				return nil, &Error{Path: path + "/required", Msg: fmt.Sprintf("%q is required but not among the properties", name)}
			}
			required[name] = true
		}
	}
	// The schema's order (decodeOrdered keeps it).
	n := &Node{kind: kindObject}
	for _, name := range props.keys {
		m, ok := props.m[name].(*omap)
		if !ok {
			return nil, &Error{Path: path + "/properties/" + name, Msg: "a property's schema must be an object"}
		}
		child, err := c.node(m, path+"/properties/"+name)
		if err != nil {
			return nil, err
		}
		key, _ := json.Marshal(name)
		n.props = append(n.props, prop{key: append(key, ':'), node: child, required: required[name]})
	}
	return n, nil
}

func (c *compiler) ref(r, path string) (*Node, error) {
	if n, ok := c.refs[r]; ok {
		return n, nil // compiled, or being compiled: a recursive schema
	}
	var name, section string
	switch {
	case strings.HasPrefix(r, "#/definitions/"):
		section, name = "definitions", strings.TrimPrefix(r, "#/definitions/")
	case strings.HasPrefix(r, "#/$defs/"):
		section, name = "$defs", strings.TrimPrefix(r, "#/$defs/")
	case r == "#":
		return nil, &Error{Path: path + "/$ref", Msg: "a reference to the root is not supported"}
	default:
		return nil, &Error{Path: path + "/$ref", Msg: fmt.Sprintf("%q: only references to #/definitions/NAME or #/$defs/NAME are supported", r)}
	}
	defs, _ := c.root.m[section].(*omap)
	var def *omap
	if defs != nil {
		def, _ = defs.m[name].(*omap)
	}
	if def == nil {
		return nil, &Error{Path: path + "/$ref", Msg: fmt.Sprintf("%q names no definition", r)}
	}
	n := &Node{}
	c.refs[r] = n
	got, err := c.node(def, "#/"+section+"/"+name)
	if err != nil {
		return nil, err
	}
	*n = *got
	return n, nil
}

func literals(values []any) *Node {
	n := &Node{kind: kindLiterals}
	for _, v := range values {
		b, _ := json.Marshal(v)
		n.lits = append(n.lits, b)
	}
	return n
}

// omap is a JSON object that keeps its keys' order.
type omap struct {
	keys []string
	m    map[string]any
}

func (o *omap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.m[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeOrdered decodes one JSON value; objects become *omap.
func decodeOrdered(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		o := &omap{m: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := o.m[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.m[k] = v
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		list := []any{}
		for dec.More() {
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return t, nil
}

// Object is the grammar of an object with exactly these properties, all
// required, in this order: what a format's fixed wrapper around a
// compiled schema needs (Llama 3.1's {"name": ..., "parameters": ...}
// tool call).
func Object(keys []string, values []*Node) *Node {
	n := &Node{kind: kindObject}
	for i, k := range keys {
		key, _ := json.Marshal(k)
		n.props = append(n.props, prop{key: append(key, ':'), node: values[i], required: true})
	}
	return n
}

// Const is the grammar of one value, v as compact JSON.
func Const(v any) *Node { return literals([]any{v}) }

// OneOf is the grammar of one of the byte strings heads, then a value of
// the same index in bodies (nothing where it is nil), then tail: what a
// tool call among several needs, where the name chosen decides the
// arguments' grammar. heads must be prefix-free (no head is the start of
// another), so the head is known once its last byte is written: Llama
// 3.1's calls are OneOf({"name":"f","parameters": ..., "}") and
// harmony's recipient names OneOf("f ", ...) with no bodies.
func OneOf(heads [][]byte, bodies []*Node, tail []byte) *Node {
	for i, h := range heads {
		for j, o := range heads {
			if i != j && bytes.HasPrefix(o, h) {
				panic(fmt.Sprintf("BUG: jsonschema.OneOf: head %q is a prefix of %q", h, o))
			}
		}
	}
	return &Node{kind: kindHeads, lits: heads, bodies: bodies, tail: tail}
}
