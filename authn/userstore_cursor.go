package authn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// cursor is the position after the last user of a ListUsers page: that
// user's sort key (lower(email) as the database computed it, so the next
// query compares like with like) and id (the tie-break, and what keeps the
// order total).
type cursor struct {
	V   int    `json:"v"`
	Key string `json:"k"`
	ID  string `json:"i"`
}

const (
	cursorVersion = 1
	// maxCursorLen bounds the untrusted cursor before it is decoded: an
	// e-mail address is at most a few hundred bytes.
	maxCursorLen = 2048
)

// encodeCursor makes the opaque next-page value. It is not signed: it only
// says where to resume in an ordering the caller may read anyway, and
// decodeCursor accepts nothing but a well-formed position.
func encodeCursor(c cursor) string {
	c.V = cursorVersion
	b, err := json.Marshal(c)
	if err != nil { // a struct of strings and an int always marshals
		panic(fmt.Sprintf("authn: encode cursor: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor from a client; anything but what
// encodeCursor makes is ErrInvalidCursor.
func decodeCursor(s string) (cursor, error) {
	if len(s) > maxCursorLen {
		return cursor{}, fmt.Errorf("%w: too long", ErrInvalidCursor)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("%w: not base64url", ErrInvalidCursor)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c cursor
	if err := dec.Decode(&c); err != nil || dec.More() {
		return cursor{}, fmt.Errorf("%w: not a cursor", ErrInvalidCursor)
	}
	if c.V != cursorVersion {
		return cursor{}, fmt.Errorf("%w: unknown version", ErrInvalidCursor)
	}
	// No e-mail is empty, and PostgreSQL text cannot hold NUL: either would
	// only turn into a database error.
	if c.Key == "" || strings.IndexByte(c.Key, 0) >= 0 {
		return cursor{}, fmt.Errorf("%w: bad position", ErrInvalidCursor)
	}
	id, ok := canonicalUUID(c.ID)
	if !ok || id != c.ID {
		return cursor{}, fmt.Errorf("%w: bad id", ErrInvalidCursor)
	}
	return c, nil
}
