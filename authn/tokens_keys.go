package authn

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
)

// MinSecretBytes is the shortest secret_key NewKeyring accepts: 256 bits,
// the size of the HMAC-SHA256 keys derived from it. configs refuses shorter
// ones first; the check is repeated here so no caller can skip it.
const MinSecretBytes = 32

// Purposes of the keys derived from secret_key. Each purpose gets its own
// key, so a key leaking through one use (or a token of one kind replayed as
// another) gives nothing for the others: a session token never verifies as
// an identity assertion, and the CSRF key cannot sign either.
const (
	PurposeSessionToken   = "session-token"
	PurposeAssertion      = "assertion-hs256"
	PurposeAssertionEdDSA = "assertion-ed25519"
	PurposeCSRF           = "csrf"
)

const (
	derivedKeyLen   = 32 // HMAC-SHA256 key size, and an Ed25519 seed's
	keyIDLen        = 16 // hex characters: 64 bits, plenty to tell a handful of keys apart
	hkdfInfoPrefix  = "portero/v1/key/"
	keyIDLabel      = "portero/v1/kid\x00"
	redactedKeyring = "[REDACTED]"
)

// Keyring holds the configured secret_key (current) and any previous ones
// kept for rotation. It never uses a secret directly: Derive turns each into
// an independent key per purpose with HKDF-SHA256 (RFC 5869). New tokens are
// signed with the current secret's key; tokens signed with a previous one
// keep verifying until that secret is removed from the configuration.
//
// A Keyring and what it derives are read-only after construction and safe
// for concurrent use. Printing one shows no key material.
type Keyring struct {
	secrets [][]byte // [0] is current; no two equal
}

// NewKeyring makes a keyring from the current secret and the previous ones,
// newest first. Every secret must be at least MinSecretBytes long; a
// previous secret equal to the current one (or to another previous one) is
// dropped, so an operator who rotates by copying the old value twice gets
// no surprise.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for i, s := range append([][]byte{current}, previous...) {
		if len(s) < MinSecretBytes {
			which := "current secret"
			if i > 0 {
				which = fmt.Sprintf("previous secret %d", i)
			}
			return nil, fmt.Errorf("%w: %s has %d bytes, need at least %d", ErrWeakSecret, which, len(s), MinSecretBytes)
		}
		dup := false
		for _, have := range k.secrets {
			if subtle.ConstantTimeCompare(have, s) == 1 {
				dup = true
				break
			}
		}
		if !dup {
			k.secrets = append(k.secrets, append([]byte(nil), s...))
		}
	}
	return k, nil
}

// Derive returns the keys for one purpose (one of the Purpose constants, or
// another fixed label of the caller's), the current one first. Keys of
// different purposes are independent; the same secret and purpose always
// give the same key and kid, on every Portero instance.
func (k *Keyring) Derive(purpose string) (*DerivedKeys, error) {
	if purpose == "" {
		return nil, fmt.Errorf("%w: empty key purpose", ErrTokenConfig)
	}
	d := &DerivedKeys{purpose: purpose, keys: make([]DerivedKey, 0, len(k.secrets))}
	for _, s := range k.secrets {
		key, err := hkdf.Key(sha256.New, s, nil, hkdfInfoPrefix+purpose, derivedKeyLen)
		if err != nil {
			// Only reachable with a hash that FIPS mode forbids; SHA-256 is not one.
			return nil, fmt.Errorf("authn: derive %s key: %w", purpose, err)
		}
		d.keys = append(d.keys, DerivedKey{ID: keyID(purpose, key), material: key})
	}
	for i := range d.keys {
		for j := range i {
			if d.keys[i].ID == d.keys[j].ID {
				// 64-bit collision between distinct secrets: astronomically
				// unlikely, but a kid must name exactly one key.
				return nil, fmt.Errorf("%w: two secrets give the same key id", ErrTokenConfig)
			}
		}
	}
	return d, nil
}

// Len is the number of distinct secrets (current plus previous).
func (k *Keyring) Len() int { return len(k.secrets) }

// String keeps secrets out of logs.
func (k Keyring) String() string { return redactedKeyring }

// GoString keeps secrets out of %#v output.
func (k Keyring) GoString() string { return redactedKeyring }

// Format keeps secrets out of every fmt verb.
func (k Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedKeyring) }

// keyID names a derived key without revealing it: SHA-256 over a label, the
// purpose and the key, cut to 16 hex characters. The hash is one-way, so a
// kid seen in a token helps no one guess the key.
func keyID(purpose string, key []byte) string {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:keyIDLen]
}

// DerivedKeys are one purpose's keys, one per secret of the Keyring, the
// current first.
type DerivedKeys struct {
	purpose string
	keys    []DerivedKey
}

// DerivedKey is one derived key and its public id (the JWT "kid").
type DerivedKey struct {
	ID       string
	material []byte
}

// Material returns the key bytes. The slice is shared: do not modify it,
// and do not log it.
func (k DerivedKey) Material() []byte { return k.material }

// String shows the kid only.
func (k DerivedKey) String() string { return "kid:" + k.ID }

// GoString shows the kid only.
func (k DerivedKey) GoString() string { return k.String() }

// Format keeps the key material out of every fmt verb.
func (k DerivedKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// Format prints the purpose and the kids, never key material. fmt reaches
// into unexported fields without calling their methods, so every type that
// holds keys formats itself (with a value receiver, covering pointers too).
func (d DerivedKeys) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "authn.DerivedKeys{purpose:%s kids:%s}", d.purpose, d.kids())
}

func (d DerivedKeys) kids() []string {
	ids := make([]string, len(d.keys))
	for i, k := range d.keys {
		ids[i] = k.ID
	}
	return ids
}

// Purpose is the label the keys were derived for.
func (d *DerivedKeys) Purpose() string { return d.purpose }

// Current is the key new tokens are signed with.
func (d *DerivedKeys) Current() DerivedKey { return d.keys[0] }

// All returns every key, the current first; for verifying something that
// carries no kid (such as a CSRF token), try each.
func (d *DerivedKeys) All() []DerivedKey { return append([]DerivedKey(nil), d.keys...) }

// Lookup finds the key with the given kid. There are only a handful of keys,
// so a scan beats a map.
func (d *DerivedKeys) Lookup(kid string) (DerivedKey, bool) {
	for _, k := range d.keys {
		if k.ID == kid {
			return k, true
		}
	}
	return DerivedKey{}, false
}
