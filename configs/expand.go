package configs

import (
	"errors"
	"fmt"
	"strings"
)

// expand substitutes environment variables in one scalar value:
//
//	${NAME}            getenv(NAME); an unset variable gives ""
//	${NAME:-fallback}  fallback when getenv(NAME) is "" (the fallback is literal text)
//	$$                 a literal $
//
// The result is never scanned again, so a variable's value containing "${…}"
// stays as it is. A '$' followed by a letter or '_' is an error rather than
// literal text: "$SECRET_KEY" is almost always a forgotten pair of braces,
// and silently using those eleven characters as a key would be worse than
// refusing to start. Any other '$' (as in a bcrypt hash "$2b$…") is literal.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i += 2
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $$ for a literal $)")
			}
			body := s[i+2 : i+2+end]
			name, fallback, hasFallback := strings.Cut(body, ":-")
			if !validVarName(name) {
				return "", fmt.Errorf("invalid variable name %q in ${%s}: want letters, digits and _ (optionally ${NAME:-default})", name, body)
			}
			v := getenv(name)
			if v == "" && hasFallback {
				v = fallback
			}
			b.WriteString(v)
			i += 2 + end + 1
		case next == '_' || isLetter(next):
			return "", errors.New("bare $NAME is not expanded: write ${NAME}, or $$ for a literal $")
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || isLetter(c) || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
