package authn

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestPasswordPolicyValidate(t *testing.T) {
	t.Parallel()
	def := DefaultPasswordPolicy()
	const email = "ana.perez+work@example.com"

	// A password that passes every default rule; cases vary one thing.
	const good = "Tq7!vZp2wK"

	cases := []struct {
		name     string
		policy   PasswordPolicy
		password string
		email    string
		want     []string // codes, in rule order; nil = valid
	}{
		{name: "valid", policy: def, password: good, email: email},
		{name: "exactly 8 runes", policy: def, password: "Tq7!vZp2", email: email},
		{name: "7 runes", policy: def, password: "Tq7!vZp", email: email, want: []string{PasswordTooShort}},
		{name: "empty", policy: def, password: "", email: email, want: []string{
			PasswordTooShort, PasswordMissingUpper, PasswordMissingLower, PasswordMissingDigit, PasswordMissingSymbol,
		}},
		{name: "no upper", policy: def, password: strings.ToLower(good), email: email, want: []string{PasswordMissingUpper}},
		{name: "no lower", policy: def, password: strings.ToUpper(good), email: email, want: []string{PasswordMissingLower}},
		{name: "no digit", policy: def, password: "Tqx!vZpywK", email: email, want: []string{PasswordMissingDigit}},
		{name: "no symbol", policy: def, password: "Tq7xvZp2wK", email: email, want: []string{PasswordMissingSymbol}},
		{name: "symbol outside the set", policy: def, password: "Tq7~vZp2wK", email: email, want: []string{PasswordMissingSymbol}},
		{name: "each listed symbol counts", policy: def, password: "Tq7xvZp2wK" + "]", email: email},
		{name: "custom symbol set", policy: func() PasswordPolicy { p := def; p.Symbols = "~"; return p }(), password: "Tq7~vZp2wK", email: email},
		{name: "rules off", policy: PasswordPolicy{MinLength: 1}, password: "x", email: email},

		// Unicode: length in runes, case from the Unicode tables.
		{name: "unicode letters count as upper and lower", policy: def, password: "Ñandú7!xy", email: email},
		{name: "8 runes but 16 bytes", policy: def, password: "Éé7!ßøÆå", email: email},
		{name: "4 runes but 8 bytes is short", policy: def, password: "É7!ñ", email: email, want: []string{PasswordTooShort}},
		{name: "invalid utf-8", policy: def, password: "Tq7!vZp2\xffK", email: email, want: []string{PasswordInvalidUTF8}},

		// Bytes, not runes, and alone: nothing else is evaluated.
		{name: "128 bytes", policy: def, password: good + strings.Repeat("a", 128-len(good)), email: email},
		{name: "129 bytes", policy: def, password: good + strings.Repeat("a", 129-len(good)), email: email, want: []string{PasswordTooLong}},
		{name: "129 bytes of multibyte runes", policy: def, password: "Tq7!" + strings.Repeat("é", 62) + "a", email: email, want: []string{PasswordTooLong}},
		{name: "too long reported alone", policy: def, password: strings.Repeat("a", 200), email: email, want: []string{PasswordTooLong}},
		{name: "MaxBytes 0 means the hard ceiling", policy: func() PasswordPolicy { p := def; p.MaxBytes = 0; return p }(),
			password: good + strings.Repeat("a", MaxPasswordBytes-len(good)), email: email},
		{name: "MaxBytes 0 still has a ceiling", policy: func() PasswordPolicy { p := def; p.MaxBytes = 0; return p }(),
			password: good + strings.Repeat("a", MaxPasswordBytes+1-len(good)), email: email, want: []string{PasswordTooLong}},

		// E-mail local part.
		{name: "equals local part", policy: def, password: "Ana.Perez+Work1", email: email, want: []string{PasswordContainsEmail}},
		{name: "contains local part before tag", policy: def, password: "1!ANA.PEREZxyz", email: email, want: []string{PasswordContainsEmail}},
		{name: "local part case-insensitive", policy: def, password: "Qz9#juanito", email: "JUANITO@example.com", want: []string{PasswordContainsEmail}},
		{name: "short local part ignored", policy: def, password: "Jo7!vZp2wK", email: "jo@example.com"},
		{name: "domain is not the local part", policy: def, password: "Example7!Zq", email: "ana@example.com"},
		{name: "no email given", policy: def, password: good, email: ""},
		{name: "email spaces trimmed", policy: def, password: "Qz9#juanito", email: "  juanito@example.com ", want: []string{PasswordContainsEmail}},
		{name: "email rule off", policy: func() PasswordPolicy { p := def; p.RejectEmailLocalPart = false; return p }(),
			password: "Qz9#juanito", email: "juanito@example.com"},

		// Common passwords.
		{name: "common with decoration", policy: def, password: "Password1!", email: email, want: []string{PasswordTooCommon}},
		{name: "common upper-cased", policy: def, password: "SUNSHINE", email: email, want: []string{
			PasswordMissingLower, PasswordMissingDigit, PasswordMissingSymbol, PasswordTooCommon,
		}},
		{name: "common with leading and trailing decoration", policy: def, password: "!1Dragon2024", email: email, want: []string{PasswordTooCommon}},
		{name: "common keyboard walk", policy: def, password: "Qwerty123!", email: email, want: []string{PasswordTooCommon}},
		{name: "common rule off", policy: func() PasswordPolicy { p := def; p.RejectCommon = false; return p }(),
			password: "Password1!", email: email},

		// Every rule at once.
		{name: "all failures listed", policy: def, password: "sunshine", email: "sunshine@example.com", want: []string{
			PasswordMissingUpper, PasswordMissingDigit, PasswordMissingSymbol, PasswordContainsEmail, PasswordTooCommon,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Validate(tc.password, tc.email)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tc.password, err)
				}
				return
			}
			var perr *PasswordPolicyError
			if !errors.As(err, &perr) {
				t.Fatalf("Validate(%q) = %v, want *PasswordPolicyError", tc.password, err)
			}
			if !errors.Is(err, ErrInvalidPassword) {
				t.Errorf("errors.Is(err, ErrInvalidPassword) = false")
			}
			if got := perr.Codes(); !slices.Equal(got, tc.want) {
				t.Errorf("codes = %v, want %v", got, tc.want)
			}
			for _, r := range perr.Reasons {
				if r.Message == "" {
					t.Errorf("reason %s has no message", r.Code)
				}
			}
			if tc.password != "" && len(tc.password) >= 4 && strings.Contains(err.Error(), tc.password) {
				t.Errorf("error message leaks the password: %q", err.Error())
			}
		})
	}
}

// Not parallel, so the allocation count below is this test's alone.
func TestPasswordPolicyHugePasswordIsCheap(t *testing.T) {
	// All lower-case: had any other rule run, it would be listed too.
	huge := strings.Repeat("a", 10<<20)
	p := DefaultPasswordPolicy()
	err := p.Validate(huge, "someone@example.com")
	var perr *PasswordPolicyError
	if !errors.As(err, &perr) || !slices.Equal(perr.Codes(), []string{PasswordTooLong}) {
		t.Fatalf("Validate(10 MiB) = %v, want only %s", err, PasswordTooLong)
	}
	// Nor did anything scan or copy it (a lower-cased copy for the common
	// list would be 10 MiB more): measure the bytes allocated.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 5 {
		_ = p.Validate(huge, "someone@example.com")
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 5; perCall > 64<<10 {
		t.Errorf("Validate(10 MiB) allocated %d bytes per call, want only the error's few", perCall)
	}
}

func TestPasswordPolicyCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		policy PasswordPolicy
		ok     bool
	}{
		{"default", DefaultPasswordPolicy(), true},
		{"zero", PasswordPolicy{}, true},
		{"negative min", PasswordPolicy{MinLength: -1}, false},
		{"max over ceiling", PasswordPolicy{MaxBytes: MaxPasswordBytes + 1}, false},
		{"min over max", PasswordPolicy{MinLength: 20, MaxBytes: 10}, false},
		{"bad symbols", PasswordPolicy{Symbols: "\xff"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.policy.Check(); (err == nil) != tc.ok {
				t.Errorf("Check() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestPasswordPolicyErrorText(t *testing.T) {
	t.Parallel()
	err := DefaultPasswordPolicy().Validate("abc", "")
	var perr *PasswordPolicyError
	if !errors.As(err, &perr) {
		t.Fatalf("want *PasswordPolicyError, got %v", err)
	}
	if !strings.Contains(perr.Reason(), "at least 8 characters") {
		t.Errorf("Reason() = %q, want the min-length message", perr.Reason())
	}
	if !strings.HasPrefix(perr.Error(), "authn: ") {
		t.Errorf("Error() = %q, want the package prefix", perr.Error())
	}
}

// BenchmarkPasswordPolicyValidate is the policy check, common list included.
func BenchmarkPasswordPolicyValidate(b *testing.B) {
	p := DefaultPasswordPolicy()
	commonPasswordSet() // build the list outside the timing
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Validate("Tq7!vZp2wK", "ana.perez@example.com")
	}
}
