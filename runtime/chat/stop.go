package chat

import "strings"

// StopStrings ends a reply at the first of a set of strings, holding back
// text that may be the start of one, so no part of a stop string is ever
// shown. The stop string itself is not part of the reply.
type StopStrings struct {
	stops []string
	held  string
	done  bool
}

// NewStopStrings returns a matcher; empty strings are ignored.
func NewStopStrings(stops []string) *StopStrings {
	s := &StopStrings{}
	for _, st := range stops {
		if st != "" {
			s.stops = append(s.stops, st)
		}
	}
	return s
}

// Push adds text and returns what may be shown now; stopped reports that a
// stop string was found, after which everything is dropped.
func (s *StopStrings) Push(text string) (out string, stopped bool) {
	if s.done {
		return "", true
	}
	if len(s.stops) == 0 {
		return text, false
	}
	buf := s.held + text
	cut := -1
	for _, st := range s.stops {
		if i := strings.Index(buf, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		s.held, s.done = "", true
		return buf[:cut], true
	}
	// Hold back the longest end of buf that begins a stop string.
	hold := 0
	for _, st := range s.stops {
		for n := min(len(st)-1, len(buf)); n > hold; n-- {
			if strings.HasSuffix(buf, st[:n]) {
				hold = n
				break
			}
		}
	}
	s.held = buf[len(buf)-hold:]
	return buf[:len(buf)-hold], false
}

// Flush returns the held-back text at the end of a reply that no stop
// string ended.
func (s *StopStrings) Flush() string {
	out := s.held
	s.held = ""
	if s.done {
		return ""
	}
	return out
}
