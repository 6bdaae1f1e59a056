package authn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portero/portero/storage"
)

// MFAState is a user's second factor as stored.
type MFAState struct {
	UserID    string
	Secret    string // sealed
	Confirmed bool
	LastStep  int64
}

// MFAStore keeps TOTP secrets and recovery codes. NewMFAStore makes it.
type MFAStore interface {
	// MFA returns the user's state or ErrMFANotFound.
	MFA(ctx context.Context, userID string) (MFAState, error)
	// SaveMFAPending stores an unconfirmed secret, replacing an earlier
	// unconfirmed one; ok is false when a confirmed one exists (kept).
	SaveMFAPending(ctx context.Context, userID, sealed string, now time.Time) (ok bool, err error)
	// ConfirmMFA confirms the pending secret at step and replaces the
	// recovery codes; ok is false when nothing was pending.
	ConfirmMFA(ctx context.Context, userID string, step int64, codeHashes []string, now time.Time) (ok bool, err error)
	// AdvanceMFAStep accepts step if it is after the last accepted one;
	// of concurrent calls for one step, one gets true.
	AdvanceMFAStep(ctx context.Context, userID string, step int64) (bool, error)
	// UseRecoveryCode marks an unused code used; false when there is none.
	UseRecoveryCode(ctx context.Context, userID, codeHash string, now time.Time) (bool, error)
	// DeleteMFA removes the secret and the recovery codes; false when there was no secret.
	DeleteMFA(ctx context.Context, userID string) (bool, error)
}

// NewMFAStore returns the second-factor store for db's dialect (migrated).
func NewMFAStore(db *storage.DB) MFAStore { return NewUserStore(db).(*sqlUserStore) }

var _ MFAStore = (*sqlUserStore)(nil)

func (s *sqlUserStore) MFA(ctx context.Context, userID string) (MFAState, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return MFAState{}, ErrMFANotFound
	}
	st := MFAState{UserID: id}
	var confirmed *time.Time
	err := s.db.queryRow(ctx, "SELECT secret, confirmed_at, last_step FROM user_mfa WHERE user_id = $1", id).
		Scan(&st.Secret, &confirmed, &st.LastStep)
	switch {
	case errors.Is(err, errNoRows):
		return MFAState{}, ErrMFANotFound
	case err != nil:
		return MFAState{}, fmt.Errorf("authn: read mfa: %w", err)
	}
	st.Confirmed = confirmed != nil
	return st, nil
}

func (s *sqlUserStore) SaveMFAPending(ctx context.Context, userID, sealed string, now time.Time) (bool, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return false, ErrUserNotFound
	}
	n, err := s.db.exec(ctx, `INSERT INTO user_mfa (user_id, secret, created_at) VALUES ($1, $2, $3)
 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0
 WHERE user_mfa.confirmed_at IS NULL`, id, sealed, dbTime(now))
	switch {
	case storage.IsForeignKeyViolation(err):
		return false, ErrUserNotFound
	case err != nil:
		return false, fmt.Errorf("authn: save mfa: %w", err)
	}
	return n == 1, nil
}

func (s *sqlUserStore) ConfirmMFA(ctx context.Context, userID string, step int64, codeHashes []string, now time.Time) (bool, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return false, nil
	}
	confirmed := false
	err := s.db.inTx(ctx, func(q dbQuerier) error {
		n, err := q.exec(ctx, "UPDATE user_mfa SET confirmed_at = $2, last_step = $3 WHERE user_id = $1 AND confirmed_at IS NULL",
			id, dbTime(now), step)
		if err != nil || n == 0 {
			return err
		}
		if _, err := q.exec(ctx, "DELETE FROM mfa_recovery_codes WHERE user_id = $1", id); err != nil {
			return err
		}
		for _, h := range codeHashes {
			if _, err := q.exec(ctx, "INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)", id, h); err != nil {
				return err
			}
		}
		confirmed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("authn: confirm mfa: %w", err)
	}
	return confirmed, nil
}

func (s *sqlUserStore) AdvanceMFAStep(ctx context.Context, userID string, step int64) (bool, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return false, nil
	}
	n, err := s.db.exec(ctx, "UPDATE user_mfa SET last_step = $2 WHERE user_id = $1 AND last_step < $2 AND confirmed_at IS NOT NULL", id, step)
	if err != nil {
		return false, fmt.Errorf("authn: advance mfa step: %w", err)
	}
	return n == 1, nil
}

func (s *sqlUserStore) UseRecoveryCode(ctx context.Context, userID, codeHash string, now time.Time) (bool, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return false, nil
	}
	n, err := s.db.exec(ctx, "UPDATE mfa_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
		id, codeHash, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("authn: use recovery code: %w", err)
	}
	return n == 1, nil
}

func (s *sqlUserStore) DeleteMFA(ctx context.Context, userID string) (bool, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return false, nil
	}
	var n int64
	err := s.db.inTx(ctx, func(q dbQuerier) error {
		if _, err := q.exec(ctx, "DELETE FROM mfa_recovery_codes WHERE user_id = $1", id); err != nil {
			return err
		}
		var err error
		n, err = q.exec(ctx, "DELETE FROM user_mfa WHERE user_id = $1", id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("authn: delete mfa: %w", err)
	}
	return n == 1, nil
}
