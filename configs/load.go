package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads: a configuration is a few kilobytes, and
// anything near this size is a mistake (the wrong file) rather than a config.
const maxFileSize = 4 << 20

// maxNodeVisits bounds the decoding work. YAML aliases let a small file refer
// to the same list many times over; without a bound a crafted file could make
// the loader walk millions of nodes.
const maxNodeVisits = 100_000

// maxProblems bounds what is reported: past this, a list of problems stops
// helping anyone, and a bound keeps the work on a hostile file small.
const maxProblems = 100

// Load reads the YAML file at path and returns it laid over Default(), with
// ${VAR} expanded through getenv, the environment overrides applied
// (SECRET_KEY, DATABASE_URL, REDIS_URL) and everything validated. A file that
// cannot be read gives the os error (wrapped); an unacceptable one gives
// errors.Join of every *Problem found (see Problems), and a zero Config.
// getenv is usually os.Getenv; tests pass a map lookup instead.
func Load(path string, getenv func(string) string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxFileSize {
		return Config{}, joinProblems([]*Problem{{Msg: fmt.Sprintf("file is larger than %d MiB; is it the right file?", maxFileSize>>20)}})
	}
	return Parse(data, getenv)
}

// Parse is Load for YAML already in memory. Empty input gives the defaults
// (still subject to the environment overrides and validation).
func Parse(data []byte, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := Default()
	d := &decoder{getenv: getenv, lines: map[string]int{}, budget: maxNodeVisits}
	root, ps := parseDocument(data)
	d.problems = ps
	if root != nil {
		d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	}
	if d.exhausted {
		// The tree was only partly decoded: validating the rest would
		// report problems that are not in the file.
		return Config{}, joinProblems(d.problems)
	}
	fromEnv := applyEnv(&cfg, getenv)
	cfg.Storage.URL = SecretURL(NormalizeStorageURL(cfg.Storage.URL.Reveal()))

	problems := d.problems
	for _, p := range cfg.problems() {
		if coveredBy(p.Key, d.problems) {
			// The decode problem on this key already says what is wrong;
			// the default left in its place would only add noise.
			continue
		}
		if env, ok := fromEnv[p.Key]; ok {
			p.Msg += " (set by " + env + ")"
		} else {
			p.Line = lineFor(p.Key, d.lines)
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		// File order reads best; problems without a line (defaults, the
		// environment) come last.
		slices.SortStableFunc(problems, func(a, b *Problem) int {
			return lineOrder(a.Line) - lineOrder(b.Line)
		})
		if n := len(problems); n > maxProblems {
			problems = append(problems[:maxProblems-1:maxProblems-1], &Problem{Msg: fmt.Sprintf("%d more problems not shown", n-maxProblems+1)})
		}
		return Config{}, joinProblems(problems)
	}
	return cfg, nil
}

func lineOrder(l int) int {
	if l == 0 {
		return int(^uint(0) >> 2)
	}
	return l
}

// coveredBy reports whether key is, or sits under, the key of one of ps.
func coveredBy(key string, ps []*Problem) bool {
	for _, p := range ps {
		if p.Key == "" {
			continue
		}
		if key == p.Key || strings.HasPrefix(key, p.Key+".") || strings.HasPrefix(key, p.Key+"[") {
			return true
		}
	}
	return false
}

// lineFor finds the line of key, or of its nearest ancestor present in the file
// ("sessions.idle_timeout" left at its default points at "sessions:").
func lineFor(key string, lines map[string]int) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := lines[k]; ok {
			return l
		}
	}
	return 0
}

func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// parseDocument parses YAML into a node tree: nil for an empty document.
func parseDocument(data []byte) (root *yaml.Node, ps []*Problem) {
	defer func() {
		// The YAML library is third-party code fed with operator input; a
		// bug there must surface as a problem, not crash `config check`.
		if r := recover(); r != nil {
			root, ps = nil, []*Problem{{Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []*Problem{syntaxProblem(err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, []*Problem{syntaxProblem(err)}
	default:
		return nil, []*Problem{{Line: extra.Line, Msg: "only one YAML document is allowed (remove the second ---)"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root = doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, []*Problem{{Line: root.Line, Msg: "the file must be a mapping of keys such as `listen: \":8080\"`"}}
	}
	return root, nil
}

// syntaxProblem turns "yaml: line 3: did not find expected key" into a Problem on line 3.
func syntaxProblem(err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := &Problem{Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				p.Line, p.Msg = n, text
			}
		}
	}
	p.Msg = "invalid YAML: " + p.Msg
	return p
}

// decoder lays a YAML node tree over a Config by walking both together, so
// every problem is reported with its key path and line, and decoding carries
// on past a bad value to find the next one. (yaml.v3 alone stops at the first
// custom-unmarshaler error, names lines but not keys, and has no strict mode
// for Node.Decode.)
type decoder struct {
	getenv   func(string) string
	problems []*Problem
	lines    map[string]int // key path -> line, for validation problems
	budget   int            // node visits left
	// exhausted is set once budget ran out; decoding then stops.
	exhausted bool
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	if len(d.problems) >= maxProblems {
		return // enough to act on; more would be noise
	}
	d.problems = append(d.problems, &Problem{Key: key, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.exhausted {
		return
	}
	if d.budget--; d.budget < 0 {
		d.exhausted = true
		d.problems = append(d.problems, &Problem{Key: path, Line: n.Line, Msg: "the document is too large or uses too many aliases"})
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if isNull(n) {
		return // an empty value keeps the default
	}
	switch {
	case v.Type() == durationType:
		d.scalar(n, v, path)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of keys, not %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain names, not %s", kindName(k))
			continue
		}
		child := joinKey(path, k.Value)
		if k.ShortTag() == "!!merge" {
			d.fail(k, child, "merge keys (<<) are not supported; anchors and aliases on values are")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, child, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			if len(d.problems) < maxProblems { // suggest costs a few edit distances
				d.fail(k, child, "unknown key%s", suggest(k.Value, fields))
			}
			continue
		}
		d.lines[child] = k.Line
		d.decode(val, v.Field(idx), child)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, not %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		child := path + "[" + strconv.Itoa(i) + "]"
		d.lines[child] = item.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(item, e, child)
		out = reflect.Append(out, e)
	}
	v.Set(out)
}

// scalar decodes one leaf value, expanding ${VAR} first. Expansion works on
// the value only (never on keys, never twice: the tree itself is not changed,
// so an anchor used through several aliases is expanded once per use from
// its original text).
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be %s, not %s", want(v), kindName(n))
		return
	}
	if n.ShortTag() == "!!binary" {
		d.fail(n, path, "binary (!!binary) values are not supported")
		return
	}
	val, err := expand(n.Value, d.getenv)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	switch {
	case v.Type() == durationType:
		dur, err := ParseDuration(val)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		// Any scalar is accepted as text: `registration: 123` is then
		// refused by validation with a clearer message than a type error.
		v.SetString(val)
	case v.Kind() == reflect.Int, v.Kind() == reflect.Bool:
		// Numbers and booleans are read from the text whatever its quoting,
		// so `max_attempts: "${N}"` (quoted, as ${…} must be inside {…}
		// flow mappings) works; an explicit tag is still honoured.
		cp := *n
		cp.Value = val
		if cp.Style&yaml.TaggedStyle == 0 {
			cp.Tag, cp.Style = "", 0
		}
		tmp := reflect.New(v.Type())
		if val == "" || isNull(&cp) {
			// "" or ~ would decode as zero, silently.
			d.fail(n, path, "must be %s, got %q", want(v), val)
			return
		}
		if err := cp.Decode(tmp.Interface()); err != nil {
			d.fail(n, path, "must be %s, got %q", want(v), val)
			return
		}
		v.Set(tmp.Elem())
	default:
		// Config holds no other kinds; a new field of a new kind must be
		// taught here, and this makes that loud in tests.
		d.fail(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a single value"
	}
}

func want(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return "a duration such as 30s, 60m or 12h"
	case v.Kind() == reflect.Int:
		return "a whole number"
	case v.Kind() == reflect.Bool:
		return "true or false"
	case v.Kind() == reflect.String:
		return "a single value"
	default:
		return "a " + v.Type().String()
	}
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// yamlFields maps each yaml tag name of a struct type to the field's index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

// suggest names the known key closest to an unknown one, for typos.
func suggest(name string, fields map[string]int) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	best, bestDist := "", 3
	for k := range fields {
		if norm(k) == norm(name) {
			return fmt.Sprintf(" (did you mean %s?)", k)
		}
		if dist := levenshtein(k, name); dist < bestDist || dist == bestDist && k < best {
			best, bestDist = k, dist
		}
	}
	if best == "" || len(name) <= bestDist {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // not a typo of any key we have; keeps the cost bounded
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// applyEnv applies the migration guide's environment variables over the file
// (a set, non-empty variable wins) and reports which keys they set.
func applyEnv(c *Config, getenv func(string) string) map[string]string {
	from := map[string]string{}
	if v := getenv("SECRET_KEY"); v != "" {
		c.SecretKey = Secret(v)
		from["secret_key"] = "SECRET_KEY"
	}
	if v := getenv("DATABASE_URL"); v != "" {
		c.Storage.URL = SecretURL(v)
		from["storage.url"] = "DATABASE_URL"
	}
	if v := getenv("REDIS_URL"); v != "" {
		c.Sessions.URL = SecretURL(v)
		from["sessions.url"] = "REDIS_URL"
	}
	return from
}

// NormalizeStorageURL turns the PostgreSQL URL spellings the legacy app's
// SQLAlchemy setup uses (postgresql+asyncpg://, postgresql+psycopg://,
// postgresql://) into the postgres:// form pgx takes, so the app's
// DATABASE_URL can be handed to Portero unchanged. asyncpg's ?ssl= becomes
// libpq's ?sslmode=. Anything else is returned as it is.
func NormalizeStorageURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	base, driver, _ := strings.Cut(strings.ToLower(scheme), "+")
	if base != "postgresql" && base != "postgres" {
		return raw
	}
	out := "postgres://" + rest
	if driver != "asyncpg" {
		return out
	}
	u, err := url.Parse(out)
	if err != nil || !u.Query().Has("ssl") || u.Query().Has("sslmode") {
		return out
	}
	q := u.Query()
	mode := strings.ToLower(q.Get("ssl"))
	switch mode {
	case "true":
		mode = "require"
	case "false":
		mode = "disable"
	}
	q.Del("ssl")
	q.Set("sslmode", mode)
	u.RawQuery = q.Encode()
	return u.String()
}
