package notify

import "errors"

// ErrInvalidMessage is a message that cannot be sent as it is: no
// recipient, or a header that would smuggle in another header. Match it
// with errors.Is; the wrapping error says which.
var ErrInvalidMessage = errors.New("notify: invalid message")
