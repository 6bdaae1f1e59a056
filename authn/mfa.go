package authn

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/sessions"
)

// Second factor: TOTP (RFC 6238: SHA-1, six digits, 30-second steps, what
// every authenticator app speaks), confirmed with a first code, with ten
// single-use recovery codes. A login of a user with a second factor is two
// steps: the password answers LOGIN_MFA_REQUIRED with a short-lived,
// single-use challenge, and the challenge plus a code opens the session.

// PurposeMFASecret is the keyring purpose of the key that seals TOTP secrets.
const PurposeMFASecret = "mfa-secret"

const (
	mfaPeriod            = 30
	mfaChallengeLifetime = 5 * time.Minute
	recoveryCodeCount    = 10
	purposeMFAChallenge  = "mfa_challenge"
	// An enrolment challenge lets a user whose role requires a second
	// factor, and who has none, enrol after the password: long enough to
	// install an app.
	purposeMFAEnrol  = "mfa_enrol"
	mfaEnrolLifetime = 15 * time.Minute
)

// Audit actions of the second factor.
const (
	ActionMFAEnrolled = "auth.mfa.enrolled"
	ActionMFADisabled = "auth.mfa.disabled"
	ActionMFAFailed   = "auth.mfa.failed"
	ActionMFAReset    = "auth.mfa.reset"
	// ActionMFAChallenged: the password was right and a code is awaited.
	ActionMFAChallenged = "auth.mfa.challenged"
)

// MFARequiredError is a right password for a user with a second factor:
// Token is the challenge to send back with a code.
type MFARequiredError struct {
	Token     string
	ExpiresIn time.Duration
}

func (e *MFARequiredError) Error() string { return "authn: second factor required" }

// MFAEnrolmentRequiredError is a right password of a user whose role
// requires a second factor they have not set up: Token lets them call
// POST /auth/mfa/enroll and /auth/mfa/confirm, and nothing else.
type MFAEnrolmentRequiredError struct {
	Token     string
	ExpiresIn time.Duration
}

func (e *MFAEnrolmentRequiredError) Error() string { return "authn: second factor enrolment required" }

// SecretSealer encrypts TOTP secrets at rest (AES-256-GCM under a key
// derived from secret_key, named by its kid so a rotated secret_key still
// opens what the previous one sealed).
type SecretSealer struct{ keys *DerivedKeys }

// NewSecretSealer derives the sealing keys from ring.
func NewSecretSealer(ring *Keyring) (*SecretSealer, error) {
	k, err := ring.Derive(PurposeMFASecret)
	if err != nil {
		return nil, err
	}
	return &SecretSealer{keys: k}, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (s *SecretSealer) seal(userID, secret string) (string, error) {
	k := s.keys.Current()
	aead, err := gcm(k.Material())
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	// The user id is authenticated data: a sealed secret moved to another
	// user's row does not open.
	ct := aead.Seal(nonce, nonce, []byte(secret), []byte(userID))
	return "v1." + k.ID + "." + base64.RawURLEncoding.EncodeToString(ct), nil
}

func (s *SecretSealer) open(userID, sealed string) (string, error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", errors.New("authn: sealed secret: unknown format")
	}
	k, ok := s.keys.Lookup(parts[1])
	if !ok {
		return "", errors.New("authn: sealed secret: key no longer in the keyring")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", err
	}
	aead, err := gcm(k.Material())
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize() {
		return "", errors.New("authn: sealed secret: too short")
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(userID))
	if err != nil {
		return "", fmt.Errorf("authn: sealed secret: %w", err)
	}
	return string(pt), nil
}

// mfaDeps are the Service's second-factor collaborators; both nil turns
// the second factor off (logins are one step, the endpoints answer 503).
type mfaDeps struct {
	store  MFAStore
	sealer *SecretSealer
}

func (s *Service) mfaOn() bool { return s.mfa.store != nil && s.mfa.sealer != nil }

// MFAEnrollment is what an app needs to add the account.
type MFAEnrollment struct {
	Secret string // base32, for typing in
	URI    string // otpauth://
	QRPNG  []byte // the URI as a QR code
}

// EnrollMFA starts (or restarts) an enrolment; it takes effect with ConfirmMFA.
func (s *Service) EnrollMFA(ctx context.Context, p Principal) (MFAEnrollment, error) {
	if !s.mfaOn() {
		return MFAEnrollment{}, fmt.Errorf("%w: second factor not configured", ErrUnavailable)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Flows.Site, AccountName: p.Session.Email, Period: mfaPeriod})
	if err != nil {
		return MFAEnrollment{}, err
	}
	sealed, err := s.mfa.sealer.seal(p.Session.UserID, key.Secret())
	if err != nil {
		return MFAEnrollment{}, err
	}
	ok, err := s.mfa.store.SaveMFAPending(ctx, p.Session.UserID, sealed, s.now())
	if err != nil {
		return MFAEnrollment{}, storeErr(err)
	}
	if !ok {
		return MFAEnrollment{}, ErrMFAAlreadyEnabled
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return MFAEnrollment{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return MFAEnrollment{}, err
	}
	return MFAEnrollment{Secret: key.Secret(), URI: key.URL(), QRPNG: buf.Bytes()}, nil
}

// ConfirmMFA turns a pending enrolment on with its first code and returns
// the recovery codes, shown this once.
func (s *Service) ConfirmMFA(ctx context.Context, p Principal, code string, meta ClientMeta) ([]string, error) {
	if !s.mfaOn() {
		return nil, fmt.Errorf("%w: second factor not configured", ErrUnavailable)
	}
	st, err := s.mfa.store.MFA(ctx, p.Session.UserID)
	switch {
	case errors.Is(err, ErrMFANotFound):
		return nil, ErrMFANotEnabled
	case err != nil:
		return nil, storeErr(err)
	case st.Confirmed:
		return nil, ErrMFAAlreadyEnabled
	}
	step, err := s.matchStep(st, code)
	if err != nil {
		return nil, err
	}
	if step == 0 {
		return nil, ErrMFABadCode
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	ok, err := s.mfa.store.ConfirmMFA(ctx, p.Session.UserID, step, hashes, s.now())
	if err != nil {
		return nil, storeErr(err)
	}
	if !ok {
		return nil, ErrMFAAlreadyEnabled // a concurrent confirmation won
	}
	if err := s.flows.tokens.DeleteAccountTokens(ctx, p.Session.UserID, purposeMFAEnrol); err != nil {
		s.log.Warn("enrolment challenge not deleted", zap.Error(err)) // it expires soon anyway
	}
	if err := s.record(ctx, meta, ActionMFAEnrolled, p.Session.UserID, map[string]any{"via": p.Via}); err != nil {
		return nil, err
	}
	return codes, nil
}

// matchStep returns the time step (within one step of now, after the last
// accepted one) whose code is code, or 0.
func (s *Service) matchStep(st MFAState, code string) (int64, error) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, nil
	}
	secret, err := s.mfa.sealer.open(st.UserID, st.Secret)
	if err != nil {
		return 0, err
	}
	now := s.now().Unix() / mfaPeriod
	for _, step := range []int64{now - 1, now, now + 1} {
		if step <= st.LastStep {
			continue // already used, or earlier than a used one: no replay
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*mfaPeriod, 0),
			totp.ValidateOpts{Period: mfaPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, nil
		}
	}
	return 0, nil
}

// checkCode accepts a TOTP code (once) or an unused recovery code.
func (s *Service) checkCode(ctx context.Context, st MFAState, code string) (method string, err error) {
	step, err := s.matchStep(st, code)
	if err != nil {
		return "", err
	}
	if step > 0 {
		ok, err := s.mfa.store.AdvanceMFAStep(ctx, st.UserID, step)
		if err != nil || !ok {
			return "", storeErrOrNil(err) // !ok: a concurrent request used this code
		}
		return "totp", nil
	}
	if h, ok := recoveryCodeHash(code); ok {
		used, err := s.mfa.store.UseRecoveryCode(ctx, st.UserID, h, s.now())
		if err != nil || !used {
			return "", storeErrOrNil(err)
		}
		return "recovery_code", nil
	}
	return "", nil
}

// DisableMFA turns the second factor off; it takes the password and a code.
func (s *Service) DisableMFA(ctx context.Context, p Principal, password, code string, meta ClientMeta) error {
	if !s.mfaOn() {
		return fmt.Errorf("%w: second factor not configured", ErrUnavailable)
	}
	u, err := s.users.UserByID(ctx, p.Session.UserID)
	if err != nil {
		return storeErr(err)
	}
	st, err := s.mfa.store.MFA(ctx, u.ID)
	switch {
	case errors.Is(err, ErrMFANotFound) || (err == nil && !st.Confirmed):
		return ErrMFANotEnabled
	case err != nil:
		return storeErr(err)
	}
	att, ok, err := s.verifyCurrentPassword(ctx, u, password, meta)
	if err != nil {
		return err
	}
	method := ""
	if ok {
		if method, err = s.checkCode(ctx, st, code); err != nil {
			_ = att.Release(ctx)
			return err
		}
	}
	if !ok || method == "" {
		if err := s.countFailure(ctx, att, u, meta); err != nil {
			return err
		}
		reason := "bad_code"
		if !ok {
			reason = "bad_password"
		}
		if err := s.record(ctx, meta, ActionMFAFailed, u.ID, map[string]any{"reason": reason, "step": "disable"}); err != nil {
			return err
		}
		if !ok {
			return ErrWrongCurrentPassword
		}
		return ErrMFABadCode
	}
	if _, err := att.Succeed(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if _, err := s.mfa.store.DeleteMFA(ctx, u.ID); err != nil {
		return storeErr(err)
	}
	return s.record(ctx, meta, ActionMFADisabled, u.ID, map[string]any{"method": method})
}

// ResetMFA removes a user's second factor (admin), e.g. a lost phone.
func (s *Service) ResetMFA(ctx context.Context, actor Principal, userID string, meta ClientMeta) error {
	if !s.mfaOn() {
		return fmt.Errorf("%w: second factor not configured", ErrUnavailable)
	}
	u, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return storeErr(err)
	}
	had, err := s.mfa.store.DeleteMFA(ctx, u.ID)
	if err != nil {
		return storeErr(err)
	}
	return s.record(ctx, meta, ActionMFAReset, u.ID, map[string]any{"by": actor.Session.UserID, "had_mfa": had})
}

// hasMFA reports whether the user has a confirmed second factor.
func (s *Service) hasMFA(ctx context.Context, userID string) (bool, error) {
	if !s.mfaOn() {
		return false, nil
	}
	st, err := s.mfa.store.MFA(ctx, userID)
	switch {
	case errors.Is(err, ErrMFANotFound):
		return false, nil
	case err != nil:
		return false, storeErr(err)
	}
	return st.Confirmed, nil
}

// mfaEnrolChallenge answers a right password of a user whose role
// requires a second factor they do not have.
func (s *Service) mfaEnrolChallenge(ctx context.Context, u User, email string, meta ClientMeta) error {
	token, hash, err := newAccountToken()
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.flows.tokens.SaveAccountToken(ctx, AccountToken{Hash: hash, UserID: u.ID, Purpose: purposeMFAEnrol,
		Fingerprint: fingerprint(purposeMFAEnrol, u.HashedPassword), ExpiresAt: now.Add(mfaEnrolLifetime)}, now); err != nil {
		return storeErr(err)
	}
	if err := s.record(ctx, meta, audit.ActionLoginFailed, u.ID, map[string]any{"reason": "mfa_enrolment_required", "email": clip(email, 320)}); err != nil {
		return err
	}
	return &MFAEnrolmentRequiredError{Token: token, ExpiresIn: mfaEnrolLifetime}
}

// EnrolmentPrincipal is who an enrolment challenge speaks for, for
// EnrollMFA and ConfirmMFA only.
func (s *Service) EnrolmentPrincipal(ctx context.Context, token string) (Principal, error) {
	t, u, err := s.peekToken(ctx, token, purposeMFAEnrol, mfaEnrolLifetime)
	if err == nil && fingerprint(purposeMFAEnrol, u.HashedPassword) != t.Fingerprint {
		err = ErrAccountTokenNotFound
	}
	switch {
	case errors.Is(err, ErrAccountTokenNotFound), errors.Is(err, ErrUserNotFound):
		return Principal{}, ErrMFABadChallenge
	case err != nil:
		return Principal{}, storeErr(err)
	}
	return Principal{Session: sessions.Session{UserID: u.ID, Email: u.Email}, Via: "mfa_enrolment"}, nil
}

// mfaChallenge answers a right password of a user with a second factor: a
// single-use challenge (stored hashed like a reset token, bound to the
// password hash) instead of a session, as a *MFARequiredError.
func (s *Service) mfaChallenge(ctx context.Context, u User, meta ClientMeta) error {
	token, hash, err := newAccountToken()
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.flows.tokens.SaveAccountToken(ctx, AccountToken{Hash: hash, UserID: u.ID, Purpose: purposeMFAChallenge,
		Fingerprint: fingerprint(purposeMFAChallenge, u.HashedPassword), ExpiresAt: now.Add(mfaChallengeLifetime)}, now); err != nil {
		return storeErr(err)
	}
	if err := s.record(ctx, meta, ActionMFAChallenged, u.ID, nil); err != nil {
		return err
	}
	return &MFARequiredError{Token: token, ExpiresIn: mfaChallengeLifetime}
}

// VerifyMFA is the second step of a login: the challenge and a code open
// the session. A wrong code counts against the account's lockout like a
// wrong password, so the lock applies to guessed codes too.
func (s *Service) VerifyMFA(ctx context.Context, challenge, code string, meta ClientMeta) (LoginResult, error) {
	if !s.mfaOn() {
		return LoginResult{}, fmt.Errorf("%w: second factor not configured", ErrUnavailable)
	}
	t, u, err := s.peekToken(ctx, challenge, purposeMFAChallenge, mfaChallengeLifetime)
	if err == nil && fingerprint(purposeMFAChallenge, u.HashedPassword) != t.Fingerprint {
		err = ErrAccountTokenNotFound
	}
	if err != nil {
		return LoginResult{}, s.flowFailed(ctx, meta, ActionMFAFailed, u.ID, "bad_challenge", err, ErrMFABadChallenge)
	}
	st, err := s.mfa.store.MFA(ctx, u.ID)
	if errors.Is(err, ErrMFANotFound) || (err == nil && !st.Confirmed) {
		return LoginResult{}, s.flowFailed(ctx, meta, ActionMFAFailed, u.ID, "bad_challenge", nil, ErrMFABadChallenge)
	}
	if err != nil {
		return LoginResult{}, storeErr(err)
	}
	att, err := s.lockout.Begin(ctx, accountKey(&u, u.Email), lockoutAddr(meta.IP))
	if err != nil {
		var le *LockoutError
		if !errors.As(err, &le) {
			return LoginResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if err := s.record(ctx, meta, ActionMFAFailed, u.ID, map[string]any{"reason": "locked"}); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, ErrMFABadCode
	}
	method, err := s.checkCode(ctx, st, code)
	if err != nil {
		_ = att.Release(ctx)
		return LoginResult{}, err
	}
	if method == "" {
		if err := s.countFailure(ctx, att, u, meta); err != nil {
			return LoginResult{}, err
		}
		if err := s.record(ctx, meta, ActionMFAFailed, u.ID, map[string]any{"reason": "bad_code"}); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, ErrMFABadCode
	}
	if lockedFor, err := att.Succeed(ctx); err != nil {
		return LoginResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	} else if lockedFor > 0 {
		return LoginResult{}, ErrMFABadCode
	}
	if _, err := s.flows.tokens.ConsumeAccountToken(ctx, t.Hash, purposeMFAChallenge); err != nil {
		return LoginResult{}, s.flowFailed(ctx, meta, ActionMFAFailed, u.ID, "bad_challenge", err, ErrMFABadChallenge)
	}
	if err := s.users.RecordLoginSuccess(ctx, u.ID, s.now()); err != nil {
		return LoginResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res, err := s.openSession(ctx, u, meta)
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.record(ctx, meta, audit.ActionLoginSucceeded, u.ID, map[string]any{
		"session_id": res.Session.ID, "mfa": method,
	}); err != nil {
		_ = s.sessions.Delete(ctx, res.Token.Key())
		return LoginResult{}, err
	}
	if method == "recovery_code" {
		s.log.Info("recovery code used", zap.String("user_id", u.ID))
	}
	return res, nil
}

// Recovery codes: 16 characters of base32 (80 bits) in four groups, stored
// as SHA-256. With 80 bits a plain digest cannot be reversed by guessing,
// so no slow hash (or key) is needed, and checking a code costs nothing.
var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newRecoveryCodes() (codes, hashes []string, err error) {
	for range recoveryCodeCount {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, err
		}
		s := strings.ToLower(recoveryEncoding.EncodeToString(b))
		code := s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		h, _ := recoveryCodeHash(code)
		codes, hashes = append(codes, code), append(hashes, h)
	}
	return codes, hashes, nil
}

// recoveryCodeHash normalises a typed code (case, spaces, hyphens) and
// returns its digest; ok is false for anything not shaped like one.
func recoveryCodeHash(code string) (string, bool) {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(c) != 16 {
		return "", false
	}
	if _, err := recoveryEncoding.DecodeString(c); err != nil {
		return "", false
	}
	return digestHex("recovery\x00" + c), true
}
