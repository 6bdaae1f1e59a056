package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/sessions"
)

// Auditor durably records an event before the answer it explains is sent.
type Auditor interface {
	Record(ctx context.Context, ev audit.Event) error
}

// ServiceConfig holds the login service's policy settings.
type ServiceConfig struct {
	Registration    string // open | admin | closed
	RevealLock      bool   // answer 423 for locked accounts instead of bad credentials
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	Policy          PasswordPolicy
	Flows           FlowConfig // password reset, e-mail verification, notices
}

// Service is the account logic behind /auth and /users: registration,
// login with lockout, sessions, password changes and administration.
type Service struct {
	users    UserStore
	sessions sessions.Store
	hasher   *Hasher
	lockout  *Lockout
	tokens   *SessionTokens
	audit    Auditor
	cfg      ServiceConfig
	now      func() time.Time
	log      *zap.Logger
	metrics  *Metrics
	flows    flowDeps
	mfa      mfaDeps
}

// ServiceDeps are the Service's collaborators.
type ServiceDeps struct {
	Users    UserStore
	Sessions sessions.Store
	Hasher   *Hasher
	Lockout  *Lockout
	Tokens   *SessionTokens
	Audit    Auditor
	Now      func() time.Time
	Log      *zap.Logger
	Metrics  *Metrics // nil records none
	// AccountTokens keeps reset and verification tokens; nil turns those
	// endpoints into 503s.
	AccountTokens AccountTokenStore
	// Notifier delivers mail to users; nil sends none (links and notices
	// are then only logged as not sent).
	Notifier    Notifier
	FlowMetrics *FlowMetrics // nil records none
	// MFAStore and MFASealer enable the TOTP second factor (both, and
	// AccountTokens for the login challenge); nil leaves logins one step.
	MFAStore  MFAStore
	MFASealer *SecretSealer
}

// NewService wires the login service.
func NewService(d ServiceDeps, cfg ServiceConfig) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	return &Service{users: d.Users, sessions: d.Sessions, hasher: d.Hasher, lockout: d.Lockout,
		tokens: d.Tokens, audit: d.Audit, cfg: cfg.withFlowDefaults(), now: d.Now, log: d.Log, metrics: d.Metrics,
		flows: newFlowDeps(d), mfa: mfaDeps{store: d.MFAStore, sealer: d.MFASealer}}
}

// ClientMeta is what is known of the caller, for sessions and audit rows.
type ClientMeta struct {
	IP        string
	UserAgent string
	RequestID string
}

// Principal is an authenticated caller of Portero's own endpoints.
type Principal struct {
	Session sessions.Session
	Via     string // "cookie" or "bearer"
}

// IsAdmin reports whether the principal may administer users.
func (p Principal) IsAdmin() bool { return sessionIsAdmin(p.Session) }

func sessionIsAdmin(s sessions.Session) bool {
	return slices.Contains(s.Roles, "admin") || slices.Contains(s.Roles, "superuser") || slices.Contains(s.Permissions, "*")
}

// identityOf is the snapshot a session carries of its user.
func identityOf(u User) (roles, perms []string) {
	roles = []string{u.Role}
	if u.IsSuperuser && u.Role != "superuser" {
		roles = append(roles, "superuser")
	}
	return roles, slices.Clone(u.Permissions)
}

// NormalizeEmail is how e-mails are compared: trimmed, lower case.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// accountKey names an account's lockout counter. An e-mail nobody has gets
// a counter too (by digest, never the raw input), so guessing at one unknown
// address is throttled exactly like a known one and reveals nothing.
func accountKey(u *User, email string) string {
	if u != nil {
		return "u:" + u.ID
	}
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return "e:" + hex.EncodeToString(sum[:16])
}

// LoginResult is a new session.
type LoginResult struct {
	User    User
	Session sessions.Session
	Token   sessions.Token
	Bearer  string // signed JWT naming the session
}

// record writes an audit row; a failure to do so fails the request, so no
// answer the client sees is missing from the trail.
func (s *Service) record(ctx context.Context, meta ClientMeta, action, userID string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	if meta.RequestID != "" {
		details["request_id"] = meta.RequestID
	}
	ev := audit.Event{Action: action, UserID: userID, IP: meta.IP, UserAgent: meta.UserAgent, Details: details}
	if userID != "" {
		ev.Resource, ev.ResourceID = "user", userID
	}
	if err := s.audit.Record(ctx, ev); err != nil {
		return fmt.Errorf("%w: audit: %w", ErrUnavailable, err)
	}
	s.metrics.observe(action, details)
	s.flows.metrics.observe(action, details)
	return nil
}

// Login checks a password and opens a session. Every way of failing that
// could tell an attacker something (no such user, wrong password, inactive,
// locked unless RevealLock) answers ErrBadCredentials after a full hash.
func (s *Service) Login(ctx context.Context, email, password string, meta ClientMeta) (LoginResult, error) {
	email = strings.TrimSpace(email)
	u, err := s.users.UserByEmail(ctx, email)
	var user *User
	switch {
	case err == nil:
		user = &u
	case errors.Is(err, ErrUserNotFound):
	default:
		return LoginResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}

	att, err := s.lockout.Begin(ctx, accountKey(user, email), lockoutAddr(meta.IP))
	if err != nil {
		return LoginResult{}, s.refused(ctx, user, email, password, err, meta)
	}

	ok, rehash := false, false
	if user != nil && len(password) <= s.maxPasswordBytes() {
		ok, rehash, err = s.hasher.Verify(ctx, password, user.HashedPassword)
		if err != nil && !errors.Is(err, ErrUnknownHashFormat) && !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrHashTooCostly) {
			_ = att.Release(ctx)
			return LoginResult{}, err
		}
		if err != nil {
			s.log.Error("stored password hash unusable", zap.String("user_id", user.ID), zap.Error(err))
		}
	} else if err := s.hasher.VerifyDummy(ctx, password); err != nil {
		_ = att.Release(ctx)
		return LoginResult{}, err
	}

	if !ok || !user.IsActive {
		return LoginResult{}, s.failed(ctx, att, user, email, ok, meta)
	}
	mfa, err := s.hasMFA(ctx, user.ID)
	if err != nil {
		_ = att.Release(ctx)
		return LoginResult{}, err
	}
	if mfa {
		// The login is not over: earlier failures stay counted until a
		// code completes it, so codes cannot be guessed between right
		// passwords without the lockout noticing.
		_ = att.Release(ctx)
	} else if lockedFor, err := att.Succeed(ctx); err != nil {
		return LoginResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	} else if lockedFor > 0 {
		// The account was locked by a concurrent failure while this password
		// was checked: no success after the lock.
		return LoginResult{}, s.lockedAnswer(ctx, user, email, lockedFor, meta)
	}
	if s.cfg.Flows.RequireVerified && !user.IsVerified {
		// Only someone who knows the password learns this.
		if err := s.record(ctx, meta, audit.ActionLoginFailed, user.ID, map[string]any{"reason": "unverified", "email": clip(email, 320)}); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, ErrUserNotVerified
	}
	// The password is proven here (and a second step never sees it), so an
	// old hash is upgraded now, or a user with a second factor would keep
	// their bcrypt hash for good.
	rehashed := false
	if rehash {
		if rehashed, err = s.upgradeHash(ctx, user, password); err != nil {
			return LoginResult{}, err
		}
	}
	if mfa {
		return LoginResult{}, s.mfaChallenge(ctx, *user, meta)
	}
	if user.RoleMFARequired && s.mfaOn() {
		return LoginResult{}, s.mfaEnrolChallenge(ctx, *user, email, meta)
	}
	now := s.now()
	if err := s.users.RecordLoginSuccess(ctx, user.ID, now); err != nil {
		return LoginResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res, err := s.openSession(ctx, *user, meta)
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.record(ctx, meta, audit.ActionLoginSucceeded, user.ID, map[string]any{
		"session_id": res.Session.ID, "rehashed": rehashed,
	}); err != nil {
		_ = s.sessions.Delete(ctx, res.Token.Key())
		return LoginResult{}, err
	}
	return res, nil
}

// upgradeHash stores password under the current parameters in place of
// the hash just verified, unless that hash changed meanwhile (a reset); on
// success u carries the new hash, to which a second-factor challenge is
// then bound. A hash that cannot be made is left for the next login.
func (s *Service) upgradeHash(ctx context.Context, u *User, password string) (bool, error) {
	h, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return false, nil
	}
	ok, err := s.users.UpgradeHash(ctx, u.ID, u.HashedPassword, h)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if ok {
		u.HashedPassword = h
	}
	return ok, nil
}

func (s *Service) maxPasswordBytes() int {
	if s.cfg.Policy.MaxBytes > 0 {
		return s.cfg.Policy.MaxBytes
	}
	return MaxPasswordBytes
}

// openSession makes a fresh token (never one the client chose) and session.
func (s *Service) openSession(ctx context.Context, u User, meta ClientMeta) (LoginResult, error) {
	tok, err := sessions.NewToken()
	if err != nil {
		return LoginResult{}, err
	}
	roles, perms := identityOf(u)
	sess, err := s.sessions.Create(ctx, tok, sessions.Session{
		UserID: u.ID, Email: u.Email, Roles: roles, Permissions: perms, LegacyID: u.LegacyID,
		IP: meta.IP, UserAgent: clip(meta.UserAgent, 512),
	})
	if err != nil {
		return LoginResult{}, fmt.Errorf("%w: sessions: %w", ErrUnavailable, err)
	}
	// The JWT carries the token itself, not its store key: a dump of the
	// store plus a leaked secret_key still cannot be turned into tokens.
	bearer, err := s.tokens.Issue(tok.Secret(), u.ID, sess.AbsoluteExpiresAt)
	if err != nil {
		_ = s.sessions.Delete(ctx, tok.Key())
		return LoginResult{}, err
	}
	if err := s.users.RecordSessionStart(ctx, SessionRecord{
		ID: sess.ID, UserID: u.ID, IP: meta.IP, UserAgent: clip(meta.UserAgent, 512),
		CreatedAt: sess.CreatedAt, LastActivity: sess.CreatedAt, ExpiresAt: sess.AbsoluteExpiresAt,
	}); err != nil {
		// History is for admins; a lost row must not lock the user out.
		s.log.Warn("session history not recorded", zap.String("session_id", sess.ID), zap.Error(err))
	}
	return LoginResult{User: u, Session: sess, Token: tok, Bearer: bearer}, nil
}

// refused handles an attempt the counters turned away before any hash.
func (s *Service) refused(ctx context.Context, user *User, email, password string, err error, meta ClientMeta) error {
	var le *LockoutError
	if !errors.As(err, &le) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	_ = s.hasher.VerifyDummy(ctx, password) // the same time as a real check
	if errors.Is(le.Err, ErrAccountLocked) {
		return s.lockedAnswer(ctx, user, email, le.RetryAfter, meta)
	}
	reason := "throttled_account"
	if le.ClientIP {
		reason = "throttled_ip"
	}
	if err := s.record(ctx, meta, audit.ActionLoginFailed, userID(user), map[string]any{"reason": reason, "email": clip(email, 320)}); err != nil {
		return err
	}
	if le.ClientIP {
		// Says only that this address tried too often, nothing of any account.
		return &ThrottledError{RetryAfter: le.RetryAfter}
	}
	return ErrBadCredentials
}

// ThrottledError is a client address over its login throttle (429).
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string { return "authn: too many login attempts from this address" }

// lockoutAddr is the address the per-IP throttle counts; a request whose
// address is unknown (no socket peer) shares one bucket.
func lockoutAddr(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

func (s *Service) lockedAnswer(ctx context.Context, user *User, email string, retry time.Duration, meta ClientMeta) error {
	if err := s.record(ctx, meta, audit.ActionLoginFailed, userID(user), map[string]any{"reason": "locked", "email": email}); err != nil {
		return err
	}
	if s.cfg.RevealLock && user != nil {
		return &LockedError{RetryAfter: retry}
	}
	return ErrBadCredentials
}

// failed counts a failed attempt, locks the account when it was the last
// one allowed, and answers bad credentials.
func (s *Service) failed(ctx context.Context, att *Attempt, user *User, email string, passwordOK bool, meta ClientMeta) error {
	reason := "unknown_user"
	if user != nil {
		reason = "bad_password"
		if passwordOK {
			reason = "inactive"
		}
	}
	if passwordOK {
		// The right password for an inactive account is no guess to count.
		_ = att.Release(ctx)
	} else if user == nil {
		if _, err := att.Fail(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	} else if err := s.countFailure(ctx, att, *user, meta); err != nil {
		return err
	}
	if err := s.record(ctx, meta, audit.ActionLoginFailed, userID(user), map[string]any{"reason": reason, "email": clip(email, 320)}); err != nil {
		return err
	}
	return ErrBadCredentials
}

// countFailure counts a wrong password against the account, mirrors the
// count into the user row, and audits the lock when this failure set it.
func (s *Service) countFailure(ctx context.Context, att *Attempt, u User, meta ClientMeta) error {
	lockedNow, err := att.Fail(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var until *time.Time
	if lockedNow {
		t := s.now().Add(s.lockout.Duration())
		until = &t
	}
	if err := s.users.RecordLoginFailure(ctx, u.ID, att.Failures(), until); err != nil {
		s.log.Warn("failed attempt not mirrored to the user row", zap.Error(err))
	}
	if !lockedNow {
		return nil
	}
	s.noticeLocked(u, *until)
	return s.record(ctx, meta, audit.ActionAccountLocked, u.ID, map[string]any{
		"locked_until": until.UTC().Format(time.RFC3339), "attempts": att.Failures(),
	})
}

func userID(u *User) string {
	if u == nil {
		return ""
	}
	return u.ID
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// LockedError is a locked account, answered as such only with lockout.reveal.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string { return "authn: account locked" }
