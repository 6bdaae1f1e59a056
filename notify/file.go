package notify

import (
	"context"
	"fmt"
	"net/mail"
	"os"
	"sync"
	"time"
)

// File appends every message, as the mail it would be, to one file: for
// development, where no mail server exists. The file holds live reset
// tokens, so it is created readable by its owner only.
type File struct {
	path string
	from *mail.Address
	now  func() time.Time
	mu   sync.Mutex
}

var _ Sender = (*File)(nil)

// NewFile returns a sender writing to path.
func NewFile(path, from string) (*File, error) {
	if path == "" {
		return nil, fmt.Errorf("notify: file path is required")
	}
	a, err := ParseFrom(from)
	if err != nil {
		return nil, err
	}
	return &File{path: path, from: a, now: time.Now}, nil
}

// Send appends m, separated from the previous message by an mbox "From " line.
func (f *File) Send(_ context.Context, m Message) error {
	now := f.now()
	msg, _, err := compose(f.from, m, now)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	_, werr := fmt.Fprintf(fh, "From %s %s\r\n%s\r\n", f.from.Address, now.UTC().Format(time.ANSIC), msg)
	if cerr := fh.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("notify: %w", werr)
	}
	return nil
}
