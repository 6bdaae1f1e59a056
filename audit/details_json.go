package audit

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendFlatJSON encodes details whose values are all strings, booleans,
// integers or finite floats (every access and denial row, at one per
// request on an audited route) without encoding/json's reflection: it was
// half of what queueing such a row cost. ok is false for any other value;
// the caller then uses encoding/json. NUL in a string becomes U+FFFD, as
// sanitizeJSON makes of encoding/json's output, since jsonb refuses it.
func appendFlatJSON(dst []byte, details map[string]any) (out []byte, ok bool) {
	var keyBuf [16]string
	keys := keyBuf[:0]
	for k, v := range details {
		switch v := v.(type) {
		case string, bool, int, int64, nil:
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return dst, false
			}
		default:
			return dst, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		switch v := details[k].(type) {
		case string:
			dst = appendJSONString(dst, v)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case int:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case float64:
			dst = appendJSONFloat(dst, v)
		case nil:
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}'), true
}

// appendJSONFloat formats like encoding/json: plain decimals, exponents only
// for very small or very large magnitudes.
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 and NUL as U+FFFD, and U+2028
// and U+2029 escaped for readers that treat them as line ends.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case 0:
				dst = append(dst, `\ufffd`...)
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
