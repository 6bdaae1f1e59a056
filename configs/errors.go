package configs

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalid matches (errors.Is) every Problem: the configuration was read but
// is not acceptable. A file that cannot be read is reported with the os error
// instead (errors.Is(err, fs.ErrNotExist) etc.).
var ErrInvalid = errors.New("invalid configuration")

// Problem is one thing wrong with a configuration, named by its YAML key path
// ("upstream.url", "routes[2].mode") and, when it came from a file, the line
// it is on. Load, Parse and Validate return errors.Join of *Problem, so a
// caller can list every problem at once (see Problems).
type Problem struct {
	Key  string // YAML key path; empty for a problem with the document itself
	Line int    // 1-based line in the file; 0 when unknown (a default or an environment override)
	Msg  string
}

// Error gives "line 12: upstream.url: must be …", leaving out what is unknown.
func (p Problem) Error() string {
	s := p.Msg
	if p.Key != "" {
		s = p.Key + ": " + s
	}
	if p.Line > 0 {
		s = "line " + strconv.Itoa(p.Line) + ": " + s
	}
	return s
}

// Is makes errors.Is(err, ErrInvalid) true for any Problem.
func (p Problem) Is(target error) bool { return target == ErrInvalid }

// InFile formats the problem the way compilers do, for `config check`:
// "portero.yaml:12: upstream.url: must be …" ("portero.yaml: …" without a line).
func (p Problem) InFile(name string) string {
	where := name
	if p.Line > 0 {
		where = name + ":" + strconv.Itoa(p.Line)
	}
	if p.Key == "" {
		return fmt.Sprintf("%s: %s", where, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", where, p.Key, p.Msg)
}

// Problems lists every *Problem inside err (through errors.Join and %w
// wrapping), in order. It returns nil for nil or for an error with none.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Problem:
			out = append(out, e)
		case Problem:
			out = append(out, &e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// joinProblems turns a list into one error (nil when empty).
func joinProblems(ps []*Problem) error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}
