package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// passlib's bcrypt_sha256 is the other bcrypt the Python world stores: the
// password is first reduced to a 44-character base64 digest, so that long
// passwords are not cut at bcrypt's 72 bytes, and the digest is bcrypted.
// FastAPI apps set up with CryptContext(schemes=["bcrypt_sha256"]) have
// these in their users table, and their owners must be able to log in
// through Portero with the passwords they have.
//
// Two versions exist (passlib 1.7.3 made v2 the default):
//
//	v1: $bcrypt-sha256$2b,12$<salt:22>$<checksum:31>
//	    key = base64(sha256(password))
//	v2: $bcrypt-sha256$v=2,t=2b,r=12$<salt:22>$<checksum:31>
//	    key = base64(hmac-sha256(key = the salt's 22 characters, msg = password))
//
// base64 is the standard alphabet with padding; salt and checksum are
// bcrypt's own base64, as in a plain bcrypt hash.
const bcryptSHA256Prefix = "$bcrypt-sha256$"

// isBcryptSHA256 reports whether encoded claims to be passlib's bcrypt_sha256.
func isBcryptSHA256(encoded string) bool { return strings.HasPrefix(encoded, bcryptSHA256Prefix) }

// bcryptSHA256Hash is a parsed bcrypt_sha256 hash.
type bcryptSHA256Hash struct {
	version  int    // 1 or 2
	bcrypt   string // the equivalent plain bcrypt hash: $2a$NN$<salt><checksum>
	saltText string // the salt's 22 characters (v2 keys its HMAC with them)
}

// parseBcryptSHA256 validates a bcrypt_sha256 hash: its shape, bcrypt's
// alphabet, and the same cost bounds as plain bcrypt, so a hostile row
// cannot ask for days of work.
func parseBcryptSHA256(encoded string) (bcryptSHA256Hash, error) {
	if !isBcryptSHA256(encoded) {
		return bcryptSHA256Hash{}, ErrUnknownHashFormat
	}
	if len(encoded) > maxEncodedHashLen {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 hash too long", ErrMalformedHash)
	}
	parts := strings.Split(encoded[len(bcryptSHA256Prefix):], "$")
	if len(parts) != 3 {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 hash must have settings, salt and checksum", ErrMalformedHash)
	}
	settings, salt, sum := parts[0], parts[1], parts[2]
	var h bcryptSHA256Hash
	var variant, rounds string
	if rest, ok := strings.CutPrefix(settings, "v=2,"); ok {
		h.version = 2
		t, r, ok := strings.Cut(rest, ",")
		var okT, okR bool
		variant, okT = strings.CutPrefix(t, "t=")
		rounds, okR = strings.CutPrefix(r, "r=")
		if !ok || !okT || !okR {
			return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 settings", ErrMalformedHash)
		}
	} else {
		h.version = 1
		var ok bool
		if variant, rounds, ok = strings.Cut(settings, ","); !ok {
			return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 settings", ErrMalformedHash)
		}
	}
	if variant != "2a" && variant != "2b" {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 variant %q", ErrMalformedHash, variant)
	}
	if len(rounds) < 1 || len(rounds) > 2 || strings.Trim(rounds, "0123456789") != "" {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 rounds", ErrMalformedHash)
	}
	cost, _ := strconv.Atoi(rounds) // one or two digits: cannot fail
	if cost < bcrypt.MinCost {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt cost %d below %d", ErrMalformedHash, cost, bcrypt.MinCost)
	}
	if cost > MaxBcryptCost {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt cost %d", ErrHashTooCostly, cost)
	}
	if len(salt) != 22 || len(sum) != 31 {
		return bcryptSHA256Hash{}, fmt.Errorf("%w: bcrypt_sha256 salt or checksum length", ErrMalformedHash)
	}
	h.saltText = salt
	// $2a$ and $2b$ are the same algorithm in Go's bcrypt (see verifyBcrypt).
	h.bcrypt = fmt.Sprintf("$2a$%02d$%s%s", cost, salt, sum)
	if err := checkBcrypt(h.bcrypt); err != nil {
		return bcryptSHA256Hash{}, err
	}
	return h, nil
}

// key is what passlib hands to bcrypt for password.
func (h bcryptSHA256Hash) key(password string) string {
	var digest []byte
	if h.version == 1 {
		sum := sha256.Sum256([]byte(password))
		digest = sum[:]
	} else {
		mac := hmac.New(sha256.New, []byte(h.saltText))
		mac.Write([]byte(password))
		digest = mac.Sum(nil)
	}
	return base64.StdEncoding.EncodeToString(digest)
}

// verifyBcryptSHA256 checks password against a passlib bcrypt_sha256 hash.
func verifyBcryptSHA256(password, encoded string) (bool, error) {
	h, err := parseBcryptSHA256(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordBytes {
		return false, nil
	}
	return verifyBcrypt(h.key(password), h.bcrypt)
}

// CheckStoredHash reports whether encoded is a password hash Portero can
// verify (argon2id, bcrypt, passlib's bcrypt_sha256) within its cost
// bounds. Imports use it to refuse a row up front instead of leaving a user
// who can never log in.
func CheckStoredHash(encoded string) error {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		_, err := parseArgon2id(encoded)
		return err
	case isBcrypt(encoded):
		return checkBcrypt(encoded)
	case isBcryptSHA256(encoded):
		_, err := parseBcryptSHA256(encoded)
		return err
	default:
		return ErrUnknownHashFormat
	}
}
