package authn

import (
	"testing"
	"time"
)

// BenchmarkSessionTokensParse is the cost every bearer-authenticated
// request pays before the session store is asked.
func BenchmarkSessionTokensParse(b *testing.B) {
	clock := newFakeClock()
	s := newTestSessionTokens(b, testKeyring(b, testSecret(0, 32), testSecret(1, 32)), clock)
	tok, err := s.Issue(testSessionKey, "0b8f6c9e-6a53-4a4c-9a53-0f2f6a1c7d11", clock.Now().Add(12*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionTokensParseForged measures a refusal at the signature
// check, what a flood of forged tokens costs.
func BenchmarkSessionTokensParseForged(b *testing.B) {
	clock := newFakeClock()
	s := newTestSessionTokens(b, testKeyring(b, testSecret(0, 32)), clock)
	tok, err := s.Issue(testSessionKey, "0b8f6c9e-6a53-4a4c-9a53-0f2f6a1c7d11", clock.Now().Add(12*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	forged := withOriginalSignature(b, tok, func(m map[string]any) { m["sub"] = "admin" })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Parse(forged); err == nil {
			b.Fatal("forged token accepted")
		}
	}
}

func BenchmarkSessionTokensIssue(b *testing.B) {
	clock := newFakeClock()
	s := newTestSessionTokens(b, testKeyring(b, testSecret(0, 32)), clock)
	expires := clock.Now().Add(12 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Issue(testSessionKey, "0b8f6c9e-6a53-4a4c-9a53-0f2f6a1c7d11", expires); err != nil {
			b.Fatal(err)
		}
	}
}
