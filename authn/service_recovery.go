package authn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/notify"
)

// Defaults of FlowConfig (FastAPI-Users' reset lifetime is an hour; the
// issue asks for 15 minutes).
const (
	DefaultResetTokenLifetime  = 15 * time.Minute
	DefaultVerifyTokenLifetime = 24 * time.Hour
)

// FlowConfig configures password reset, e-mail verification and notices.
type FlowConfig struct {
	ResetTokenLifetime  time.Duration // default DefaultResetTokenLifetime
	VerifyTokenLifetime time.Duration // default DefaultVerifyTokenLifetime
	// RequireVerified refuses the login of a user whose e-mail is not
	// verified (LOGIN_USER_NOT_VERIFIED), once the password is right.
	RequireVerified bool
	// ResetURL and VerifyURL are the pages the mail links to, the token
	// added as ?token=; empty sends the bare token.
	ResetURL  string
	VerifyURL string
	// Site names the service in messages; default "Portero".
	Site string
}

func (c ServiceConfig) withFlowDefaults() ServiceConfig {
	if c.Flows.ResetTokenLifetime <= 0 {
		c.Flows.ResetTokenLifetime = DefaultResetTokenLifetime
	}
	if c.Flows.VerifyTokenLifetime <= 0 {
		c.Flows.VerifyTokenLifetime = DefaultVerifyTokenLifetime
	}
	if c.Flows.Site == "" {
		c.Flows.Site = "Portero"
	}
	return c
}

// Notifier delivers one message to a user; notify.SMTP and notify.File are two.
type Notifier interface {
	Send(ctx context.Context, m notify.Message) error
}

// flowDeps are the Service's collaborators for the flows of this file.
type flowDeps struct {
	tokens    AccountTokenStore
	notifier  Notifier
	templates *notify.Templates
	metrics   *FlowMetrics
	bg        *background
}

func newFlowDeps(d ServiceDeps) flowDeps {
	t, err := notify.NewTemplates()
	if err != nil {
		panic(err) // the templates are embedded and tested: only a broken build gets here
	}
	return flowDeps{tokens: d.AccountTokens, notifier: d.Notifier, templates: t, metrics: d.FlowMetrics, bg: newBackground(d.Log)}
}

// Close waits for queued mail and look-ups to finish (until ctx ends).
func (s *Service) Close(ctx context.Context) error { return s.flows.bg.close(ctx) }

// ForgotPassword asks for a reset link for email. Its answer and the work
// done before it are the same whether or not the address has an account:
// one audit row, then the look-up, the token and the mail happen in the
// background. Only a store outage (the audit row cannot be written) is an
// error, for every address alike.
func (s *Service) ForgotPassword(ctx context.Context, email string, meta ClientMeta) error {
	email = clip(NormalizeEmail(email), 320)
	if err := s.record(ctx, meta, ActionPasswordResetRequested, "", map[string]any{"email": email}); err != nil {
		return err
	}
	s.background(notify.KindResetPassword, func(ctx context.Context) {
		u, ok := s.activeUser(ctx, email)
		if !ok {
			return
		}
		s.issue(ctx, u, purposeResetPassword, fingerprint(purposeResetPassword, u.HashedPassword),
			s.cfg.Flows.ResetTokenLifetime, s.cfg.Flows.ResetURL, notify.KindResetPassword)
	})
	return nil
}

// RequestVerifyToken asks for a verification link, answered like ForgotPassword.
func (s *Service) RequestVerifyToken(ctx context.Context, email string, meta ClientMeta) error {
	email = clip(NormalizeEmail(email), 320)
	if err := s.record(ctx, meta, ActionEmailVerifyRequested, "", map[string]any{"email": email}); err != nil {
		return err
	}
	s.background(notify.KindVerifyEmail, func(ctx context.Context) {
		u, ok := s.activeUser(ctx, email)
		if !ok || u.IsVerified {
			return
		}
		s.issue(ctx, u, purposeVerifyEmail, fingerprint(purposeVerifyEmail, NormalizeEmail(u.Email)),
			s.cfg.Flows.VerifyTokenLifetime, s.cfg.Flows.VerifyURL, notify.KindVerifyEmail)
	})
	return nil
}

func (s *Service) activeUser(ctx context.Context, email string) (User, bool) {
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil {
		if !errors.Is(err, ErrUserNotFound) {
			s.log.Warn("account flow: user look-up failed", zap.Error(err))
		}
		return User{}, false
	}
	return u, u.IsActive
}

// accountTokenResendInterval is how soon after a link another may be
// mailed to the same account: a script posting forgot-password in a loop
// must not flood anyone's inbox (or the relay's reputation). The answer
// to the request is the same either way.
const accountTokenResendInterval = time.Minute

// issue stores a fresh token for u and mails it.
func (s *Service) issue(ctx context.Context, u User, purpose, fp string, life time.Duration, page string, kind notify.Kind) {
	if s.flows.tokens == nil {
		return
	}
	last, err := s.flows.tokens.LastAccountTokenAt(ctx, u.ID, purpose)
	if err != nil {
		s.log.Error("account flow: token look-up failed", zap.String("user_id", u.ID), zap.Error(err))
		return
	}
	if !last.IsZero() && s.now().Sub(last) < accountTokenResendInterval {
		s.flows.metrics.notification(kind, "throttled")
		return
	}
	token, hash, err := newAccountToken()
	if err != nil {
		s.log.Error("account flow: token", zap.Error(err))
		return
	}
	now := s.now()
	if err := s.flows.tokens.SaveAccountToken(ctx, AccountToken{Hash: hash, UserID: u.ID, Purpose: purpose,
		Fingerprint: fp, ExpiresAt: now.Add(life)}, now); err != nil {
		s.log.Error("account flow: token not stored", zap.String("user_id", u.ID), zap.Error(err))
		return
	}
	link := ""
	if page != "" {
		link = page + "?" + url.Values{"token": {token}}.Encode()
	}
	s.send(ctx, kind, u, notify.Data{Link: link, Token: token, ExpiresIn: life})
}

// send renders and delivers one message now, counting the outcome.
func (s *Service) send(ctx context.Context, kind notify.Kind, u User, d notify.Data) {
	if s.flows.notifier == nil {
		s.log.Warn("no notifier configured: message not sent", zap.String("kind", string(kind)), zap.String("user_id", u.ID))
		return
	}
	d.Site, d.Email = s.cfg.Flows.Site, u.Email
	if d.When.IsZero() {
		d.When = s.now()
	}
	m, err := s.flows.templates.Render(kind, d)
	if err == nil {
		err = s.flows.notifier.Send(ctx, m)
	}
	if err != nil {
		s.flows.metrics.notification(kind, "failed")
		s.log.Error("message not sent", zap.String("kind", string(kind)), zap.String("user_id", u.ID), zap.Error(err))
		return
	}
	s.flows.metrics.notification(kind, "sent")
}

// background queues fn; a full queue drops it, logged and counted.
func (s *Service) background(kind notify.Kind, fn func(context.Context)) {
	if !s.flows.bg.submit(fn) {
		s.flows.metrics.notification(kind, "dropped")
		s.log.Error("background queue full: message dropped", zap.String("kind", string(kind)))
	}
}

// noticeLocked tells the user their account was locked.
func (s *Service) noticeLocked(u User, until time.Time) {
	if s.flows.notifier == nil {
		return
	}
	when := s.now()
	s.background(notify.KindAccountLocked, func(ctx context.Context) {
		s.send(ctx, notify.KindAccountLocked, u, notify.Data{When: when, Until: until})
	})
}

// noticePasswordChanged tells the user their password was changed.
func (s *Service) noticePasswordChanged(u User) {
	if s.flows.notifier == nil {
		return
	}
	when := s.now()
	s.background(notify.KindPasswordChanged, func(ctx context.Context) {
		s.send(ctx, notify.KindPasswordChanged, u, notify.Data{When: when})
	})
}

// ResetPassword sets a new password with a reset token. The token is used
// up only once the new password passes the policy, so a rejected password
// can be retried with the same link. On success every session of the user
// ends, the lockout is cleared, and the user is told by mail.
func (s *Service) ResetPassword(ctx context.Context, token, password string, meta ClientMeta) (User, error) {
	t, u, err := s.peekToken(ctx, token, purposeResetPassword, s.cfg.Flows.ResetTokenLifetime)
	if err == nil && fingerprint(purposeResetPassword, u.HashedPassword) != t.Fingerprint {
		err = ErrAccountTokenNotFound // the password changed since
	}
	if err != nil {
		return User{}, s.flowFailed(ctx, meta, ActionPasswordResetFailed, u.ID, "bad_token", err, ErrBadResetToken)
	}
	if err := s.cfg.Policy.Validate(password, u.Email); err != nil {
		if ferr := s.flowFailed(ctx, meta, ActionPasswordResetFailed, u.ID, "invalid_password", nil, nil); ferr != nil {
			return User{}, ferr
		}
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, err
	}
	if _, err := s.flows.tokens.ConsumeAccountToken(ctx, t.Hash, purposeResetPassword); err != nil {
		// Used by a concurrent request since it was read.
		return User{}, s.flowFailed(ctx, meta, ActionPasswordResetFailed, u.ID, "bad_token", err, ErrBadResetToken)
	}
	if err := s.users.SetPassword(ctx, u.ID, hash); err != nil {
		return User{}, storeErr(err)
	}
	if err := s.flows.tokens.DeleteAccountTokens(ctx, u.ID, purposeResetPassword); err != nil {
		s.log.Warn("other reset tokens not deleted", zap.Error(err)) // their fingerprint is stale anyway
	}
	// As after an admin's password change: every session ends, the one that
	// may have been stolen included.
	ended, err := s.endUserSessions(ctx, u.ID, "password_reset", "", "")
	if err != nil {
		return User{}, err
	}
	// Whoever locked the account by guessing is shut out by the new
	// password; the owner should not have to wait out the lock.
	wasLocked, err := s.lockout.Unlock(ctx, accountKey(&u, u.Email))
	if err != nil {
		return User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := s.users.Unlock(ctx, u.ID); err != nil {
		return User{}, storeErr(err)
	}
	s.noticePasswordChanged(u)
	if err := s.record(ctx, meta, ActionPasswordReset, u.ID, map[string]any{"sessions_ended": ended, "was_locked": wasLocked}); err != nil {
		return User{}, err
	}
	return s.GetUser(ctx, u.ID)
}

// Verify marks the user's e-mail verified with a verification token.
func (s *Service) Verify(ctx context.Context, token string, meta ClientMeta) (User, error) {
	t, u, err := s.peekToken(ctx, token, purposeVerifyEmail, s.cfg.Flows.VerifyTokenLifetime)
	if err == nil && fingerprint(purposeVerifyEmail, NormalizeEmail(u.Email)) != t.Fingerprint {
		err = ErrAccountTokenNotFound // the e-mail changed since
	}
	if err != nil {
		return User{}, s.flowFailed(ctx, meta, ActionEmailVerifyFailed, u.ID, "bad_token", err, ErrBadVerifyToken)
	}
	if u.IsVerified {
		return User{}, s.flowFailed(ctx, meta, ActionEmailVerifyFailed, u.ID, "already_verified", nil, ErrAlreadyVerified)
	}
	if _, err := s.flows.tokens.ConsumeAccountToken(ctx, t.Hash, purposeVerifyEmail); err != nil {
		return User{}, s.flowFailed(ctx, meta, ActionEmailVerifyFailed, u.ID, "bad_token", err, ErrBadVerifyToken)
	}
	verified := true
	u, err = s.users.UpdateUser(ctx, u.ID, UserUpdate{IsVerified: &verified})
	if err != nil {
		return User{}, storeErr(err)
	}
	if err := s.record(ctx, meta, ActionEmailVerified, u.ID, map[string]any{"email": u.Email}); err != nil {
		return User{}, err
	}
	return u, nil
}

// peekToken finds an unexpired token and its active user without using it.
// Any refusal is ErrAccountTokenNotFound; a store outage is ErrUnavailable.
func (s *Service) peekToken(ctx context.Context, token, purpose string, life time.Duration) (AccountToken, User, error) {
	if s.flows.tokens == nil {
		return AccountToken{}, User{}, fmt.Errorf("%w: no account token store", ErrUnavailable)
	}
	hash, ok := accountTokenHash(token)
	if !ok {
		return AccountToken{}, User{}, ErrAccountTokenNotFound
	}
	t, err := s.flows.tokens.AccountToken(ctx, hash, purpose)
	if err != nil {
		return AccountToken{}, User{}, err
	}
	// The stored expiry, and never longer than the lifetime in force now:
	// shortening the setting shortens links already sent.
	if now := s.now(); !now.Before(t.ExpiresAt) || !now.Before(t.CreatedAt.Add(life)) {
		return t, User{}, ErrAccountTokenNotFound
	}
	u, err := s.users.UserByID(ctx, t.UserID)
	if err != nil {
		return t, User{}, err
	}
	if !u.IsActive {
		return t, u, ErrAccountTokenNotFound
	}
	return t, u, nil
}

// flowFailed audits a refused step. cause decides the answer: a store
// outage is ErrUnavailable, anything else is answer.
func (s *Service) flowFailed(ctx context.Context, meta ClientMeta, action, userID, reason string, cause, answer error) error {
	if cause != nil && !errors.Is(cause, ErrAccountTokenNotFound) && !errors.Is(cause, ErrUserNotFound) {
		return storeErr(cause)
	}
	if err := s.record(ctx, meta, action, userID, map[string]any{"reason": reason}); err != nil {
		return err
	}
	return answer
}
