package audit

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseAuditRequest: any query string and Accept header either parse
// into a filter the store accepts, or are refused with a ParamsError that
// names each refused parameter; nothing panics.
func FuzzParseAuditRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{"user_id=0190d4a4-5f4e-7b3c-9a1d-2b3c4d5e6f70&action=auth.login&limit=10", "application/x-ndjson"},
		{"since=2026-03-01T09:00:00Z&until=2026-03-02T09:00:00.5+01:00&format=csv", "text/csv;q=0.5, */*;q=0.1"},
		{"since=2026-03-01T09:00:00 01:00&ip=::ffff:192.0.2.1", "application/json"},
		{"cursor=MToxNzcyMzU1NjAwMDAwMDAwMDAwOjE&action=auth.*", ""},
		{"limit=1001&limit=2&format=xml&%zz", "text/csv;q=abc"},
		{"action=%00&ip=fe80::1%25eth0", ",,;;q=1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, query, accept string) {
		req, err := parseAuditRequest(query, []string{accept})
		if err != nil {
			var pe *ParamsError
			if !errors.As(err, &pe) || len(pe.Issues) == 0 || !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("error %v is not a ParamsError with issues", err)
			}
			for _, is := range pe.Issues {
				if is.Param == "" || is.Msg == "" || is.Type == "" {
					t.Fatalf("incomplete issue %+v", is)
				}
			}
			return
		}
		if _, err := req.filter.validate(); err != nil {
			t.Fatalf("accepted %q but the store refuses its filter: %v", query, err)
		}
		if req.filter.Limit < 1 || req.filter.Limit > MaxLimit {
			t.Fatalf("limit %d", req.filter.Limit)
		}
		switch req.format {
		case formatJSON, formatNDJSON, formatCSV:
		default:
			t.Fatalf("format %q", req.format)
		}
		if !req.filter.Since.IsZero() && !req.filter.Until.IsZero() && !req.filter.Until.After(req.filter.Since) {
			t.Fatalf("since %v not before until %v", req.filter.Since, req.filter.Until)
		}
	})
}

// FuzzCSVSafe: no cell leaves csvSafe starting a formula, and a cell that
// did not start one is left as it was.
func FuzzCSVSafe(f *testing.F) {
	for _, s := range []string{"", "=1+1", "+", "-", "@x", "\t", "\r", "plain", "'quoted", "(a=b)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := csvSafe(s)
		if out != "" && strings.ContainsRune("=+-@\t\r", rune(out[0])) {
			t.Fatalf("csvSafe(%q) = %q starts a formula", s, out)
		}
		if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			if out != s {
				t.Fatalf("csvSafe(%q) = %q changed a harmless cell", s, out)
			}
		} else if out != "'"+s {
			t.Fatalf("csvSafe(%q) = %q", s, out)
		}
	})
}
