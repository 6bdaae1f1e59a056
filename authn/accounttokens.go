package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/portero/portero/storage"
)

// Purposes of account tokens.
const (
	purposeResetPassword = "reset_password"
	purposeVerifyEmail   = "verify_email"
)

// AccountToken is a single-use token as stored: never the token itself,
// only its digest.
type AccountToken struct {
	Hash        string // hex SHA-256 of the token the user holds
	UserID      string
	Purpose     string
	Fingerprint string // digest of the account state the token was issued for
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// AccountTokenStore keeps the tokens of password reset and e-mail
// verification. NewAccountTokenStore makes it for either dialect.
type AccountTokenStore interface {
	// SaveAccountToken stores t, first deleting the user's other tokens of
	// the same purpose (a new link supersedes the old one) and every
	// expired token (so the table never grows with abandoned links).
	SaveAccountToken(ctx context.Context, t AccountToken, now time.Time) error
	// AccountToken reads a token without using it.
	AccountToken(ctx context.Context, hash, purpose string) (AccountToken, error)
	// ConsumeAccountToken deletes the token and returns it; of concurrent
	// calls for one token, exactly one gets it and the others get
	// ErrAccountTokenNotFound.
	ConsumeAccountToken(ctx context.Context, hash, purpose string) (AccountToken, error)
	// DeleteAccountTokens deletes the user's tokens of purpose.
	DeleteAccountTokens(ctx context.Context, userID, purpose string) error
	// LastAccountTokenAt is when the user's newest outstanding token of
	// purpose was made; the zero time when there is none.
	LastAccountTokenAt(ctx context.Context, userID, purpose string) (time.Time, error)
}

// NewAccountTokenStore returns the token store for db's dialect (migrated).
func NewAccountTokenStore(db *storage.DB) AccountTokenStore {
	return NewUserStore(db).(*sqlUserStore)
}

var _ AccountTokenStore = (*sqlUserStore)(nil)

func (s *sqlUserStore) SaveAccountToken(ctx context.Context, t AccountToken, now time.Time) error {
	userID, ok := canonicalUUID(t.UserID)
	if !ok {
		return ErrUserNotFound
	}
	err := s.db.inTx(ctx, func(q dbQuerier) error {
		if _, err := q.exec(ctx, "DELETE FROM account_tokens WHERE (user_id = $1 AND purpose = $2) OR expires_at <= $3",
			userID, t.Purpose, dbTime(now)); err != nil {
			return err
		}
		_, err := q.exec(ctx, `INSERT INTO account_tokens (token_hash, user_id, purpose, fingerprint, created_at, expires_at)
 VALUES ($1, $2, $3, $4, $5, $6)`, t.Hash, userID, t.Purpose, t.Fingerprint, dbTime(now), dbTime(t.ExpiresAt))
		return err
	})
	switch {
	case storage.IsForeignKeyViolation(err):
		return ErrUserNotFound
	case err != nil:
		return fmt.Errorf("authn: save account token: %w", err)
	}
	return nil
}

func (s *sqlUserStore) accountToken(ctx context.Context, op, query, hash, purpose string) (AccountToken, error) {
	t := AccountToken{Hash: hash, Purpose: purpose}
	err := s.db.queryRow(ctx, query, hash, purpose).Scan(&t.UserID, &t.Fingerprint, &t.CreatedAt, &t.ExpiresAt)
	switch {
	case errors.Is(err, errNoRows):
		return AccountToken{}, ErrAccountTokenNotFound
	case err != nil:
		return AccountToken{}, fmt.Errorf("authn: %s: %w", op, err)
	}
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	return t, nil
}

func (s *sqlUserStore) AccountToken(ctx context.Context, hash, purpose string) (AccountToken, error) {
	return s.accountToken(ctx, "read account token", "SELECT "+fmt.Sprintf(s.d.uuidText, "user_id")+
		", fingerprint, created_at, expires_at FROM account_tokens WHERE token_hash = $1 AND purpose = $2", hash, purpose)
}

func (s *sqlUserStore) ConsumeAccountToken(ctx context.Context, hash, purpose string) (AccountToken, error) {
	return s.accountToken(ctx, "consume account token", "DELETE FROM account_tokens WHERE token_hash = $1 AND purpose = $2 RETURNING "+
		fmt.Sprintf(s.d.uuidText, "user_id")+", fingerprint, created_at, expires_at", hash, purpose)
}

func (s *sqlUserStore) DeleteAccountTokens(ctx context.Context, userID, purpose string) error {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return nil
	}
	if _, err := s.db.exec(ctx, "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2", userID, purpose); err != nil {
		return fmt.Errorf("authn: delete account tokens: %w", err)
	}
	return nil
}

func (s *sqlUserStore) LastAccountTokenAt(ctx context.Context, userID, purpose string) (time.Time, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return time.Time{}, nil
	}
	var at time.Time
	err := s.db.queryRow(ctx, "SELECT created_at FROM account_tokens WHERE user_id = $1 AND purpose = $2 ORDER BY created_at DESC LIMIT 1",
		userID, purpose).Scan(&at)
	switch {
	case errors.Is(err, errNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("authn: last account token: %w", err)
	}
	return at.UTC(), nil
}

// accountTokenBytes is the entropy of a reset or verification token.
const accountTokenBytes = 32

// newAccountToken returns a fresh token (base64url, 43 characters) and the
// digest the store keeps.
func newAccountToken() (token, hash string, err error) {
	b := make([]byte, accountTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, digestHex(token), nil
}

// accountTokenHash is the stored digest of a token a client presents;
// ok is false for anything newAccountToken cannot have made, which is
// refused before any database round trip.
func accountTokenHash(token string) (hash string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != accountTokenBytes {
		return "", false
	}
	return digestHex(token), true
}

func digestHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fingerprint binds a token to the account state it was issued for: a
// reset token to the password hash, a verification token to the e-mail.
// A change of either leaves outstanding tokens unusable.
func fingerprint(purpose, state string) string {
	return digestHex(purpose + "\x00" + state)[:32]
}
