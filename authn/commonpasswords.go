package authn

import (
	_ "embed" // for the //go:embed list below
	"strings"
	"sync"
	"unicode"
)

// commonPasswordsText is the embedded list; commonpasswords.txt's header says
// where it comes from and how it was built.
//
//go:embed commonpasswords.txt
var commonPasswordsText string

// commonPasswordSet parses the list once, on first use, and is read-only
// afterwards. It is built lazily rather than in init() so programs that never
// check a password (migrate, config check) do not pay for the ~9k-entry map.
var commonPasswordSet = sync.OnceValue(func() map[string]struct{} {
	return parseCommonPasswords(commonPasswordsText)
})

// parseCommonPasswords reads one password a line; lines starting with "#!"
// are comments, blank lines are skipped, entries are lower-cased.
func parseCommonPasswords(text string) map[string]struct{} {
	set := make(map[string]struct{}, strings.Count(text, "\n")+1)
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#!") {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
}

// minCommonStem is the shortest stem (what is left after stripping digits and
// symbols) that is looked up. Shorter stems such as "a" in "A1234567!" would
// refuse passwords only because some list holds a one-letter entry.
const minCommonStem = 3

// isCommonPassword reports whether pw, compared case-insensitively, is on the
// list as it is, or once trailing digits and symbols are stripped
// ("Password1!" → "password"), or once they are stripped at both ends
// ("!1Dragon99" → "dragon"): the usual ways people dress up a common password
// to pass composition rules.
func isCommonPassword(set map[string]struct{}, pw string) bool {
	lower := strings.ToLower(pw)
	if _, ok := set[lower]; ok {
		return true
	}
	for _, stem := range []string{
		strings.TrimRightFunc(lower, isDigitOrSymbol),
		strings.TrimFunc(lower, isDigitOrSymbol),
	} {
		if len([]rune(stem)) < minCommonStem {
			continue
		}
		if _, ok := set[stem]; ok {
			return true
		}
	}
	return false
}

// isDigitOrSymbol is what people append to a word: anything that is not a
// letter (digits, punctuation, symbols, spaces).
func isDigitOrSymbol(r rune) bool { return !unicode.IsLetter(r) }
