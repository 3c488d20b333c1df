package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an OpenAI-style error: the status and the body
// {"error": {"message", "type", "param", "code"}}.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// invalid is a 400 about one parameter.
func invalid(param, code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: str(param), Code: str(code), Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	b, err := json.Marshal(map[string]*apiError{"error": e})
	if err != nil {
		panic("BUG: an error body does not marshal: " + err.Error())
	}
	w.Write(append(b, '\n'))
}
