// Package dsl reads the .arch language: a text description of a model
// architecture's configuration, weights and forward pass. It turns source
// text into a syntax tree and nothing more; names, types and shapes are the
// compiler's business (package compiler/check).
//
// The grammar is written as participle struct tags on the types below, so
// the syntax tree and the grammar cannot drift apart. fastparse.go reads
// error-free files by hand, faster; a change to a tag needs the same
// change there, which TestFastParseMatchesGrammar and FuzzFastParse catch
// when it is missing. docs/arch-language.md is the reference for users.
package dsl

import "github.com/alecthomas/participle/v2/lexer"

// File is one .arch source file.
type File struct {
	Pos    lexer.Position
	Name   string     // the file name diagnostics print
	Source string     // the text, for quoting in diagnostics
	Model  *ModelDecl `parser:"@@"`
	Blocks []*Block   `parser:"@@*"`
}

// ModelDecl names the architecture and the Hugging Face architectures it
// implements: `model "gpt-oss" for "GptOssForCausalLM"`.
type ModelDecl struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   string   `parser:"'model' @String"`
	HF     []string `parser:"( 'for' @String ( ',' @String )* )?"`
}

// Block is one top-level section.
type Block struct {
	Pos     lexer.Position
	Config  *ConfigBlock  `parser:"  @@"`
	Weights *WeightsBlock `parser:"| @@"`
	Forward *ForwardBlock `parser:"| @@"`
	Def     *FuncDecl     `parser:"| @@"`
}

// FuncDecl is a user function, `def name(a, b) { ... return expr }`: the
// compiler inlines it at each call, so that an attention block or a whole
// decoder layer is written once.
type FuncDecl struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   string   `parser:"'def' @Ident '('"`
	Params []string `parser:"( @Ident ( ',' @Ident )* ','? )? ')'"`
	Body   []*Stmt  `parser:"'{' @@* '}'"`
}

// ConfigBlock holds the typed parameters, derived values and checks.
type ConfigBlock struct {
	Pos   lexer.Position
	Items []*ConfigItem `parser:"'config' '{' @@* '}'"`
}

// ConfigItem is a parameter, a derived value or a check.
type ConfigItem struct {
	Pos   lexer.Position
	Check *CheckDecl `parser:"  @@"`
	Named *NamedItem `parser:"| @@"`
	// Param and Derived are filled from Named after parsing.
	Param   *ParamDecl
	Derived *DerivedDecl
}

// NamedItem is the common prefix of a parameter and a derived value; the
// grammar decides between them on the token after the name, so that a
// mistake later in the line is reported where it is.
type NamedItem struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Name    string       `parser:"@Ident"`
	Param   *ParamDecl   `parser:"(  @@"`
	Derived *DerivedDecl `parser:" | @@ )"`
}

// ParamDecl is `name: type in accepted = default from "json.key", "alt.key" or fallback`.
type ParamDecl struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Name    string
	Type    *TypeExpr     `parser:"':' @@"`
	Accept  *AcceptClause `parser:"@@?"`
	Default *Expr         `parser:"( '=' @@ )?"`
	From    *FromClause   `parser:"@@?"`
}

// AcceptClause says which values a parameter accepts: `in ["a", "b"]` (a
// list of the accepted values) or `in 1..1024` (a half-open range, like a
// for loop's). For a list type it applies to every element.
type AcceptClause struct {
	Pos  lexer.Position
	From *Expr `parser:"'in' @@"`
	To   *Expr `parser:"( '..' @@ )?"`
}

// FromClause maps a parameter to config.json keys. Keys are dotted paths
// (`rope_scaling.factor`); the first one present wins. Without an `or`
// clause a config.json that lacks every key is an error.
type FromClause struct {
	Pos       lexer.Position
	Keys      []string `parser:"'from' @String ( ',' @String )*"`
	OrDefault bool     `parser:"( 'or' ( @'default'"`
	Or        *Expr    `parser:"         | @@ ) )?"`
}

// TypeExpr is int, float, bool, string or a list of one of them: [int].
type TypeExpr struct {
	Pos    lexer.Position
	EndPos lexer.Position
	List   *TypeExpr `parser:"  '[' @@ ']'"`
	Name   string    `parser:"| @Ident"`
}

// DerivedDecl is `name = expr`, computed from parameters.
type DerivedDecl struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   string
	Value  *Expr `parser:"'=' @@"`
}

// CheckDecl is `check expr, "message"`: a condition the configuration must meet.
type CheckDecl struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Cond    *Expr  `parser:"'check' @@"`
	Message string `parser:"( ',' @String )?"`
}

// WeightsBlock declares every tensor the checkpoint holds.
type WeightsBlock struct {
	Pos   lexer.Position
	Items []*WeightItem `parser:"'weights' '{' @@* '}'"`
}

// WeightItem is a weight or a per-layer group of weights.
type WeightItem struct {
	Pos    lexer.Position
	Layers *WeightLoop `parser:"  @@"`
	Weight *WeightDecl `parser:"| @@"`
}

// WeightLoop declares weights once per layer: `for i in 0..layers { ... }`.
type WeightLoop struct {
	Pos     lexer.Position
	Var     string        `parser:"'for' @Ident 'in'"`
	From    *Expr         `parser:"@@ '..'"`
	To      *Expr         `parser:"@@"`
	Weights []*WeightDecl `parser:"'{' @@* '}'"`
}

// WeightDecl is `name: dtype[dims] = "checkpoint.name.{i}" when cond`.
type WeightDecl struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Name    string  `parser:"@Ident ':'"`
	DType   string  `parser:"@Ident"`
	Dims    []*Expr `parser:"'[' @@ ( ',' @@ )* ']'"`
	Pattern string  `parser:"'=' @String"`
	When    *Expr   `parser:"( 'when' @@ )?"`
}

// ForwardBlock is the forward pass: `forward(tokens) { ... }`.
type ForwardBlock struct {
	Pos   lexer.Position
	Input string  `parser:"'forward' '(' @Ident ')'"`
	Body  []*Stmt `parser:"'{' @@* '}'"`
}

// Stmt is one statement of the forward pass.
type Stmt struct {
	Pos    lexer.Position
	EndPos lexer.Position
	For    *ForStmt    `parser:"  @@"`
	If     *IfStmt     `parser:"| @@"`
	Return *ReturnStmt `parser:"| @@"`
	Assign *AssignStmt `parser:"| @@"`
}

// ForStmt repeats its body: `for i in 0..layers { ... }`. Loops run at
// compile time; the IR holds one copy of the body per iteration.
type ForStmt struct {
	Pos  lexer.Position
	Var  string  `parser:"'for' @Ident 'in'"`
	From *Expr   `parser:"@@ '..'"`
	To   *Expr   `parser:"@@"`
	Body []*Stmt `parser:"'{' @@* '}'"`
}

// IfStmt chooses statements by a condition known at compile time.
type IfStmt struct {
	Pos    lexer.Position
	Cond   *Expr   `parser:"'if' @@"`
	Then   []*Stmt `parser:"'{' @@* '}'"`
	ElseIf *IfStmt `parser:"( 'else' ( @@"`
	Else   []*Stmt `parser:"           | '{' @@* '}' ) )?"`
}

// ReturnStmt ends the forward pass with its output (the logits).
type ReturnStmt struct {
	Pos   lexer.Position
	Value *Expr `parser:"'return' @@"`
}

// AssignStmt binds one or more names: `x = expr`.
type AssignStmt struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Names  []string `parser:"@Ident ( ',' @Ident )* '='"`
	Value  *Expr    `parser:"@@"`
}

// Expr is an operand followed by binary operators; the parser turns the
// flat list into a tree by precedence (see Tree).
type Expr struct {
	Pos    lexer.Position
	EndPos lexer.Position
	First  *Unary    `parser:"@@"`
	Rest   []*OpTerm `parser:"@@*"`
	// tree caches Tree: loop bodies are evaluated once per layer.
	tree Node
}

// OpTerm is one `op operand` pair of an Expr.
type OpTerm struct {
	Pos     lexer.Position
	Op      string `parser:"@( 'or' | 'and' | 'in' | 'not' 'in' | '==' | '!=' | '<=' | '>=' | '<' | '>' | '+' | '-' | '*' | '/' | '%' )"`
	Operand *Unary `parser:"@@"`
}

// Unary is an operand with a prefix operator, or just the operand. The
// operator is a disjunction, not an optional prefix, so that a Unary that
// does not start here fails without reading anything.
type Unary struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Op      string   `parser:"( @( '-' | 'not' )"`
	X       *Unary   `parser:"  @@"`
	Operand *Postfix `parser:"| @@ )"`
}

// Postfix is a primary expression followed by calls, indexing and fields.
type Postfix struct {
	Pos      lexer.Position
	EndPos   lexer.Position
	Primary  *Primary  `parser:"@@"`
	Suffixes []*Suffix `parser:"@@*"`
}

// Suffix is `(args)`, `[index]` or `.field`.
type Suffix struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Call   *CallArgs `parser:"  '(' @@ ')'"`
	Index  *Expr     `parser:"| '[' @@ ']'"`
	Field  string    `parser:"| '.' @Ident"`
}

// CallArgs holds positional then named arguments.
type CallArgs struct {
	Pos  lexer.Position
	Args []*Arg `parser:"( @@ ( ',' ( @@ )? )* )?"` // a trailing comma is allowed
}

// Arg is `expr` or `name=expr`. The grammar reads `expr ('=' expr)?` and
// the parser checks that a named argument's name is a bare identifier:
// that keeps the grammar free of backtracking.
type Arg struct {
	Pos    lexer.Position
	EndPos lexer.Position
	First  *Expr `parser:"@@"`
	Second *Expr `parser:"( '=' @@ )?"`
	// Name and Value are filled after parsing.
	Name  string
	Value *Expr
}

// Primary is a literal, a name, a list, a conditional or a parenthesised
// expression.
type Primary struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Float  *float64  `parser:"  @Float"`
	Int    *int64    `parser:"| @Int"`
	String *string   `parser:"| @String"`
	Bool   *Boolean  `parser:"| @( 'true' | 'false' )"`
	None   bool      `parser:"| @'none'"`
	If     *IfExpr   `parser:"| @@"`
	List   *ListExpr `parser:"| @@"`
	Paren  *Expr     `parser:"| '(' @@ ')'"`
	Ident  string    `parser:"| @Ident"`
}

// Boolean captures true/false.
type Boolean bool

// Capture implements participle.Capture.
func (b *Boolean) Capture(values []string) error {
	*b = values[0] == "true"
	return nil
}

// IfExpr is `if cond then a else b`, evaluated at compile time.
type IfExpr struct {
	Pos  lexer.Position
	Cond *Expr `parser:"'if' @@"`
	Then *Expr `parser:"'then' @@"`
	Else *Expr `parser:"'else' @@"`
}

// ListExpr is `[a, b, c]` or the comprehension `[expr for i in 0..n]`.
type ListExpr struct {
	Pos   lexer.Position
	Items *ListItems `parser:"'[' @@ ']'"`
}

// ListItems is the inside of a list.
type ListItems struct {
	Pos   lexer.Position
	Elems []*Expr  `parser:"( @@ ( ',' ( @@ )? )* )?"` // a trailing comma is allowed
	For   *ListFor `parser:"( @@ )?"`
}

// ListFor is the generator of a list comprehension.
type ListFor struct {
	Pos  lexer.Position
	Var  string `parser:"'for' @Ident 'in'"`
	From *Expr  `parser:"@@ '..'"`
	To   *Expr  `parser:"@@"`
}
