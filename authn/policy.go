package authn

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPasswordSymbols is the symbol set of the migration guide's policy.
const DefaultPasswordSymbols = "!@#$%^&*()_+-=[]{}|;:,.<>?"

// MaxPasswordBytes is the hard ceiling on any password this package will
// look at, whatever the policy says: Hash refuses longer ones and Verify never
// matches them. The policy's MaxBytes (128 by default) is far below it; the
// ceiling exists so a misconfigured policy cannot let a megabyte reach argon2.
const MaxPasswordBytes = 4096

// Stable reason codes of a PasswordPolicyError. Clients may switch on them, so
// they never change; the human messages may.
const (
	PasswordTooLong       = "password_too_long"
	PasswordInvalidUTF8   = "password_invalid_utf8"
	PasswordTooShort      = "password_too_short"
	PasswordMissingUpper  = "password_missing_upper"
	PasswordMissingLower  = "password_missing_lower"
	PasswordMissingDigit  = "password_missing_digit"
	PasswordMissingSymbol = "password_missing_symbol"
	PasswordContainsEmail = "password_contains_email"
	PasswordTooCommon     = "password_too_common"
)

// minEmailLocalPart is the shortest e-mail local part that the policy looks
// for in a password: "jo@example.com" must not forbid every password that
// contains "jo".
const minEmailLocalPart = 3

// PasswordPolicy says what a new password must look like. The zero value of a
// boolean turns its rule off; DefaultPasswordPolicy gives DESIGN.md's policy.
type PasswordPolicy struct {
	// MinLength counts characters (runes), not bytes, so "Ñandú" is 5 long.
	MinLength int
	// MaxBytes bounds the UTF-8 length and is checked before anything else so
	// that a huge password costs nothing. <= 0 or above MaxPasswordBytes means
	// MaxPasswordBytes: there is never "no limit".
	MaxBytes int

	RequireUpper  bool // a letter for which unicode.IsUpper holds
	RequireLower  bool // a letter for which unicode.IsLower holds
	RequireDigit  bool // a decimal digit (unicode.IsDigit)
	RequireSymbol bool // one of Symbols

	// RejectEmailLocalPart refuses a password that equals or contains the
	// e-mail's local part (case-insensitively; local parts shorter than 3
	// characters are ignored). For "ana.perez+work@x" both "ana.perez+work"
	// and "ana.perez" are looked for.
	RejectEmailLocalPart bool
	// RejectCommon refuses passwords on the embedded common-password list,
	// also after stripping added digits and symbols ("Password1!").
	RejectCommon bool

	// Symbols is the set from which RequireSymbol wants one character.
	// Empty means DefaultPasswordSymbols.
	Symbols string
}

// DefaultPasswordPolicy is DESIGN.md's policy: 8 to 128 bytes, upper, lower,
// digit and symbol, not the e-mail's local part, not a common password.
func DefaultPasswordPolicy() PasswordPolicy {
	return PasswordPolicy{
		MinLength:            8,
		MaxBytes:             128,
		RequireUpper:         true,
		RequireLower:         true,
		RequireDigit:         true,
		RequireSymbol:        true,
		RejectEmailLocalPart: true,
		RejectCommon:         true,
		Symbols:              DefaultPasswordSymbols,
	}
}

// Check reports problems with the policy itself (for config validation), all
// of them joined into one message.
func (p PasswordPolicy) Check() error {
	var problems []string
	if p.MinLength < 0 {
		problems = append(problems, "min_length must not be negative")
	}
	if p.MaxBytes > MaxPasswordBytes {
		problems = append(problems, fmt.Sprintf("max_bytes must be at most %d", MaxPasswordBytes))
	}
	if p.MinLength > p.maxBytes() {
		problems = append(problems, "min_length exceeds max_bytes: no password could pass")
	}
	if !utf8.ValidString(p.Symbols) {
		problems = append(problems, "symbols must be valid UTF-8")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("password policy: %s", strings.Join(problems, "; "))
}

func (p PasswordPolicy) maxBytes() int {
	if p.MaxBytes <= 0 || p.MaxBytes > MaxPasswordBytes {
		return MaxPasswordBytes
	}
	return p.MaxBytes
}

func (p PasswordPolicy) symbols() string {
	if p.Symbols == "" {
		return DefaultPasswordSymbols
	}
	return p.Symbols
}

// Validate checks password against every rule and returns nil or a
// *PasswordPolicyError listing each rule that failed, so the user fixes
// everything in one go. The one exception is the length in bytes: a password
// over MaxBytes is refused with that reason alone, before any other work.
func (p PasswordPolicy) Validate(password, email string) error {
	if limit := p.maxBytes(); len(password) > limit {
		return &PasswordPolicyError{Reasons: []PasswordPolicyReason{{
			Code:    PasswordTooLong,
			Message: fmt.Sprintf("Password must be at most %d bytes long.", limit),
		}}}
	}
	if !utf8.ValidString(password) {
		// Nothing below is meaningful on broken UTF-8, and such a password
		// could not be typed the same way twice.
		return &PasswordPolicyError{Reasons: []PasswordPolicyReason{{
			Code:    PasswordInvalidUTF8,
			Message: "Password must be valid UTF-8 text.",
		}}}
	}

	var reasons []PasswordPolicyReason
	fail := func(code, msg string) {
		reasons = append(reasons, PasswordPolicyReason{Code: code, Message: msg})
	}

	if utf8.RuneCountInString(password) < p.MinLength {
		fail(PasswordTooShort, fmt.Sprintf("Password must be at least %d characters long.", p.MinLength))
	}

	var upper, lower, digit, symbol bool
	syms := p.symbols()
	for _, r := range password {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		}
		if strings.ContainsRune(syms, r) {
			symbol = true
		}
	}
	if p.RequireUpper && !upper {
		fail(PasswordMissingUpper, "Password must contain an upper-case letter.")
	}
	if p.RequireLower && !lower {
		fail(PasswordMissingLower, "Password must contain a lower-case letter.")
	}
	if p.RequireDigit && !digit {
		fail(PasswordMissingDigit, "Password must contain a digit.")
	}
	if p.RequireSymbol && !symbol {
		fail(PasswordMissingSymbol, "Password must contain one of these symbols: "+syms)
	}

	if p.RejectEmailLocalPart && containsEmailLocalPart(password, email) {
		fail(PasswordContainsEmail, "Password must not contain the e-mail address.")
	}
	if p.RejectCommon && isCommonPassword(commonPasswordSet(), password) {
		fail(PasswordTooCommon, "Password is too common.")
	}

	if len(reasons) == 0 {
		return nil
	}
	return &PasswordPolicyError{Reasons: reasons}
}

// containsEmailLocalPart reports whether password contains the local part of
// email (or its part before a "+tag"), case-insensitively.
func containsEmailLocalPart(password, email string) bool {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		// Not an address: the caller validates e-mails; without a local part
		// there is nothing to compare.
		return false
	}
	local := strings.ToLower(email[:at])
	pw := strings.ToLower(password)
	candidates := []string{local}
	if base, _, found := strings.Cut(local, "+"); found {
		candidates = append(candidates, base)
	}
	for _, c := range candidates {
		if utf8.RuneCountInString(c) >= minEmailLocalPart && strings.Contains(pw, c) {
			return true
		}
	}
	return false
}

// PasswordPolicyReason is one failed rule: a stable code for programs and a
// message for people.
type PasswordPolicyReason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PasswordPolicyError lists every rule a password failed. It matches
// ErrInvalidPassword with errors.Is.
type PasswordPolicyError struct {
	Reasons []PasswordPolicyReason
}

// Error joins the messages; it never contains the password.
func (e *PasswordPolicyError) Error() string {
	return "authn: password does not meet the policy: " + e.Reason()
}

// Reason is the human text of all failed rules, for FastAPI-Users'
// {"code": "REGISTER_INVALID_PASSWORD", "reason": "..."}.
func (e *PasswordPolicyError) Reason() string {
	msgs := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		msgs[i] = r.Message
	}
	return strings.Join(msgs, " ")
}

// Codes lists the stable codes of the failed rules, in rule order.
func (e *PasswordPolicyError) Codes() []string {
	codes := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		codes[i] = r.Code
	}
	return codes
}

// Is makes errors.Is(err, ErrInvalidPassword) true.
func (e *PasswordPolicyError) Is(target error) bool { return target == ErrInvalidPassword }
