package authn

import "errors"

// Sentinel errors of package authn. Match them with errors.Is; callers wrap them
// with %w to add context. The HTTP layer maps them to status codes and
// FastAPI-Users style bodies in one place.
var (
	// ErrInvalidPassword is matched by every *PasswordPolicyError, so callers
	// that only need "the policy said no" can use errors.Is; the HTTP layer
	// answers 400 REGISTER_INVALID_PASSWORD with the error's reasons.
	ErrInvalidPassword = errors.New("authn: password does not meet the policy")

	// ErrPasswordTooLong is returned by Hash for a password longer than
	// MaxPasswordBytes. The policy refuses such passwords long before that;
	// this is the last line so a huge body can never reach the hash function.
	ErrPasswordTooLong = errors.New("authn: password too long")

	// ErrUnknownHashFormat means a stored hash is neither argon2id in PHC form
	// nor bcrypt ($2a$, $2b$, $2y$). The stored value cannot be checked, so the
	// login must fail; an operator has to look at that user row.
	ErrUnknownHashFormat = errors.New("authn: unknown password hash format")

	// ErrMalformedHash means a stored hash has a known prefix but cannot be
	// parsed (bad field, bad base64, wrong length).
	ErrMalformedHash = errors.New("authn: malformed password hash")

	// ErrHashTooCostly means a stored hash asks for more memory, time,
	// parallelism or output than this gateway will ever spend on one
	// verification. A hostile or corrupt row in the database must not be able
	// to make a login allocate gigabytes or spin for minutes.
	ErrHashTooCostly = errors.New("authn: password hash parameters exceed the allowed bounds")

	// ErrInvalidHashParams means configured Argon2Params are unusable
	// (zero rounds, too little memory, out of bounds).
	ErrInvalidHashParams = errors.New("authn: invalid argon2 parameters")

	// ErrHasherBusy means the hashing pool is saturated: its queue was full or
	// the wait for a worker exceeded the configured maximum. The HTTP layer
	// answers 503 with Retry-After; nothing about the user is revealed because
	// unknown users go through the same pool (VerifyDummy).
	ErrHasherBusy = errors.New("authn: password hasher busy")

	// ErrInvalidToken is the one answer to every bearer token, legacy JWT or
	// identity assertion that does not verify: bad signature, wrong or
	// missing kid, unexpected alg, expired, wrong audience, malformed, too
	// large. The error wraps the detailed cause for logs, but callers (and
	// so clients) get no hint of which check failed; the HTTP layer answers
	// 401 alike for all of them.
	ErrInvalidToken = errors.New("authn: invalid token")

	// ErrWeakSecret means a secret given to NewKeyring is shorter than
	// MinSecretBytes, or a legacy JWT secret is empty.
	ErrWeakSecret = errors.New("authn: secret too short")

	// ErrTokenConfig means token settings are unusable: an algorithm other
	// than the ones allowed, an unknown legacy subject kind, a bad claim name.
	ErrTokenConfig = errors.New("authn: invalid token configuration")

	// ErrTokenInput means a token cannot be minted from what the caller gave:
	// an empty user id or session key, an expiry not in the future, a legacy
	// subject of the wrong kind, an empty audience.
	ErrTokenInput = errors.New("authn: cannot mint token from this input")
)

// Sentinel errors of the user store (UserStore). Stores translate driver
// errors into these at the boundary; not-found answers carry no database text.
var (
	// ErrUserNotFound means no user has that id, e-mail or legacy id. A
	// malformed user id gets it too: to a caller it names no user either.
	ErrUserNotFound = errors.New("authn: user not found")

	// ErrEmailTaken means another user already has that e-mail address,
	// compared ignoring case and surrounding spaces.
	ErrEmailTaken = errors.New("authn: e-mail address already registered")

	// ErrLegacyIDTaken means another user already carries that legacy id.
	ErrLegacyIDTaken = errors.New("authn: legacy id already belongs to another user")

	// ErrUserIDTaken means CreateUser was given an id that already exists.
	ErrUserIDTaken = errors.New("authn: user id already exists")

	// ErrUnknownRole means a user was given a role_id that names no role.
	ErrUnknownRole = errors.New("authn: unknown role")

	// ErrRoleNotFound means a role looked up or updated by id or name does
	// not exist.
	ErrRoleNotFound = errors.New("authn: role not found")

	// ErrRoleNameTaken means another role already has that name.
	ErrRoleNameTaken = errors.New("authn: role name already exists")

	// ErrInvalidUser means user data the store cannot keep: an empty e-mail,
	// an id that is not a UUID, negative counters, contradictory updates.
	// The wrapping error says which.
	ErrInvalidUser = errors.New("authn: invalid user data")

	// ErrInvalidRole means an empty role name or permission, or an id given
	// to CreateRole (ids are assigned by the store).
	ErrInvalidRole = errors.New("authn: invalid role")

	// ErrInvalidSessionRecord means a session history row without an id or
	// an expiry.
	ErrInvalidSessionRecord = errors.New("authn: invalid session record")

	// ErrInvalidCursor means a ListUsers cursor that ListUsers did not make
	// (tampered, truncated, from another version).
	ErrInvalidCursor = errors.New("authn: invalid page cursor")
)

// Sentinel errors of the login service.
var (
	// ErrUnavailable means a store the answer depends on (users, sessions,
	// counters, audit) cannot answer; the HTTP layer says 503, never "wrong
	// password", and never lets a guess through unchecked.
	ErrUnavailable = errors.New("authn: backing store unavailable")
	// ErrBadCredentials is the one answer to a wrong e-mail, a wrong password,
	// an inactive account and (unless lockout.reveal) a locked account.
	ErrBadCredentials = errors.New("authn: bad credentials")
)

// Sentinel errors of the lockout (Lockout, Attempt).
var (
	// ErrTooManyAttempts means a login was refused before any password
	// check: the client address is over its throttle, or the account
	// already has its allowed attempts failed or in flight. Every
	// *LockoutError matches it, the locked-account one included. Answer
	// like bad credentials (after the same dummy hash), or 429 with
	// Retry-After for the address throttle.
	ErrTooManyAttempts = errors.New("authn: too many login attempts")

	// ErrAccountLocked means the account is locked after too many failures.
	// Answer exactly like bad credentials, or, with lockout.reveal, 423
	// LOGIN_ACCOUNT_LOCKED with Retry-After from the *LockoutError.
	ErrAccountLocked = errors.New("authn: account locked")

	// ErrCountersUnavailable means the store that holds the attempt counters
	// did not answer. Login fails closed with 503: no unlimited guessing.
	ErrCountersUnavailable = errors.New("authn: attempt counters unavailable")

	// ErrInvalidLockoutInput means Lockout was given an empty or unusable
	// account key or a client address that is not an IP address. It is a
	// wiring bug, never something to answer as bad credentials.
	ErrInvalidLockoutInput = errors.New("authn: invalid lockout key or client address")

	// ErrAttemptFinished means an Attempt was ended twice; the second call
	// changed nothing.
	ErrAttemptFinished = errors.New("authn: login attempt already ended")
)

// Sentinel errors of password reset and e-mail verification.
var (
	// ErrBadResetToken: the reset token is unknown, used, expired or
	// superseded, the password changed since it was issued, or the
	// account is inactive. The HTTP layer answers RESET_PASSWORD_BAD_TOKEN.
	ErrBadResetToken = errors.New("authn: bad reset token")
	// ErrBadVerifyToken is the same for verification tokens (the e-mail
	// changed since, rather than the password): VERIFY_USER_BAD_TOKEN.
	ErrBadVerifyToken = errors.New("authn: bad verification token")
	// ErrAlreadyVerified: the e-mail is verified already
	// (VERIFY_USER_ALREADY_VERIFIED).
	ErrAlreadyVerified = errors.New("authn: e-mail already verified")
	// ErrUserNotVerified: the right password, but the e-mail is not
	// verified and FlowConfig.RequireVerified refuses such logins
	// (LOGIN_USER_NOT_VERIFIED).
	ErrUserNotVerified = errors.New("authn: e-mail not verified")
	// ErrAccountTokenNotFound means no token has that digest and purpose
	// (never issued, used already, or superseded).
	ErrAccountTokenNotFound = errors.New("authn: account token not found")
)

// Sentinel errors of the second factor.
var (
	// ErrMFANotFound means the user has no second factor, not even a
	// pending one (MFAStore).
	ErrMFANotFound = errors.New("authn: no second factor")
	// ErrMFAAlreadyEnabled: enrolment or confirmation for a user whose
	// second factor is on (MFA_ALREADY_ENABLED).
	ErrMFAAlreadyEnabled = errors.New("authn: second factor already enabled")
	// ErrMFANotEnabled: confirmation without an enrolment, or disabling
	// what is not on (MFA_NOT_ENABLED).
	ErrMFANotEnabled = errors.New("authn: second factor not enabled")
	// ErrMFABadCode: a wrong, replayed or used code, or any code while the
	// account is locked (MFA_BAD_CODE, LOGIN_MFA_BAD_CODE).
	ErrMFABadCode = errors.New("authn: wrong second-factor code")
	// ErrMFABadChallenge: an unknown, used or expired login or enrolment
	// challenge (LOGIN_MFA_BAD_TOKEN).
	ErrMFABadChallenge = errors.New("authn: bad or expired second-factor challenge")
)
