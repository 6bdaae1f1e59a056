package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
)

// Fleet-wide route toggles: an operator flips a route's mode (or rolls it
// back) once, in the database, and every Portero instance applies it within
// about a second. The file's table stays the base: an override only
// replaces the mode of a route the file has, so a config reload keeps the
// overrides, and removing every override (Reset) is the one-step rollback
// to the file's table.

// Errors of route toggles.
var (
	// ErrUnknownRoute means a toggle names no route of the file's table
	// (by name or path): overriding a route nobody configured is refused.
	ErrUnknownRoute = errors.New("proxy: no route of the file's table has that name or path")
	// ErrInvalidMode means a mode that is not one of the route modes.
	ErrInvalidMode = errors.New("proxy: invalid route mode")
)

// DefaultRouteName names the fallback route (default_mode) in toggles.
const DefaultRouteName = "default"

// Override is a route's mode as set fleet-wide, replacing the file's.
type Override struct {
	// Route is the route's name: its configured path, followed by its
	// methods when it has some ("/api/x GET,POST"), or "default".
	Route   string    `json:"route"`
	Mode    Mode      `json:"mode"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Version int64     `json:"version"`
}

// OverrideStore keeps the overrides in the database every instance shares.
// Version is a counter that every change raises, in commit order, so that
// polling it is enough to notice any change.
type OverrideStore interface {
	// Version returns the counter of the latest change (0 before any).
	Version(ctx context.Context) (int64, error)
	// List returns every override and a version at least as old as them:
	// a change committed meanwhile is seen again at the next poll.
	List(ctx context.Context) ([]Override, int64, error)
	// Put stores the overrides in one transaction, stamping them with the
	// new version, and returns the ones they replaced.
	Put(ctx context.Context, ovs []Override) (replaced []Override, version int64, err error)
	// Delete removes the overrides of the named routes (every override when
	// routes is nil) in one transaction and returns the ones it removed.
	Delete(ctx context.Context, routes []string) (removed []Override, version int64, err error)
}

// OverrideWatcher is an OverrideStore that can signal changes as they
// commit (PostgreSQL's LISTEN/NOTIFY), so instances need not wait for the
// next poll. The channel is never closed; it stops when ctx ends.
type OverrideWatcher interface {
	Watch(ctx context.Context) <-chan struct{}
}

// ChangeAuditor durably records a change before it is reported as made.
type ChangeAuditor interface {
	Record(ctx context.Context, ev audit.Event) error
}

// Actor is who asked for a change, for the audit trail.
type Actor struct {
	ID        string // a user id, or "cli:NAME" for the command line
	Email     string
	IP        string
	UserAgent string
	RequestID string
}

func (a Actor) label() string {
	if a.Email != "" {
		return a.Email
	}
	return a.ID
}

// ModeChange is one route's effective mode before and after a change, as
// this instance's file table sees it.
type ModeChange struct {
	Route string `json:"route"`
	Old   Mode   `json:"old"`
	New   Mode   `json:"new"`
}

// RouteState is one route of the effective table and where its mode comes from.
type RouteState struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"` // "" for the default route
	Methods  []string  `json:"methods"`
	FileMode Mode      `json:"file_mode"`
	Mode     Mode      `json:"mode"`
	Source   string    `json:"source"` // "file" or "override"
	Override *Override `json:"override,omitempty"`
}

// RoutesView is the table in force on this instance.
type RoutesView struct {
	Version int64        `json:"version"`
	Routes  []RouteState `json:"routes"`
	// Orphans are overrides that name no route of this instance's file
	// table (the file changed since); they are kept but not applied.
	Orphans []Override `json:"orphaned_overrides"`
}

// TogglesOptions are the optional settings of NewToggles.
type TogglesOptions struct {
	Poll    time.Duration // how often the version is read (default 1s)
	Resync  time.Duration // how often everything is re-read regardless (default 30s)
	Now     func() time.Time
	Metrics prometheus.Registerer // nil registers nothing
}

// Toggles applies the fleet's overrides on top of the file's table and
// makes changes to them.
type Toggles struct {
	swap  func(*Table)
	store OverrideStore
	audit ChangeAuditor
	log   *zap.Logger
	opts  TogglesOptions
	m     *toggleMetrics

	refreshMu sync.Mutex // one store read and install at a time
	mu        sync.Mutex // guards the fields below
	base      *Table
	overrides map[string]Override
	version   int64
	failing   bool
}

// NewToggles starts from base (the file's table) and installs effective
// tables through swap (a Router's Swap; nil for a command-line tool that
// only changes the store). Call Refresh once before serving, then Run.
func NewToggles(base *Table, swap func(*Table), store OverrideStore, aud ChangeAuditor, log *zap.Logger, opts TogglesOptions) *Toggles {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if swap == nil {
		swap = func(*Table) {}
	}
	return &Toggles{swap: swap, store: store, audit: aud, log: log, opts: opts, m: newToggleMetrics(opts.Metrics),
		base: base, overrides: map[string]Override{}}
}

// Swap installs a new file table (a config reload) with the overrides on top.
func (t *Toggles) Swap(base *Table) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base = base
	t.installLocked()
}

// installLocked puts base plus overrides into force. Called with mu held.
func (t *Toggles) installLocked() {
	applied := 0
	for name := range t.overrides {
		if t.base.byName(name) != nil {
			applied++
		}
	}
	t.m.set(applied, t.version)
	t.swap(t.base.withOverrides(t.overrides))
}

// Refresh reads every override from the store and applies them.
func (t *Toggles) Refresh(ctx context.Context) error {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	list, version, err := t.store.List(ctx)
	if err != nil {
		return err
	}
	ovs := make(map[string]Override, len(list))
	for _, o := range list {
		if !validMode(o.Mode) {
			// A newer Portero may know modes this one does not: skip it
			// rather than refuse the whole set.
			t.log.Warn("route override with an unknown mode ignored", zap.String("route", o.Route), zap.String("mode", string(o.Mode)))
			continue
		}
		ovs[o.Route] = o
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.overrides, t.version = ovs, version
	t.installLocked()
	return nil
}

// Run keeps the overrides in force current until ctx ends: on every
// notification, whenever the polled version moves, and every Resync.
func (t *Toggles) Run(ctx context.Context) {
	var notify <-chan struct{}
	if w, ok := t.store.(OverrideWatcher); ok {
		notify = w.Watch(ctx)
	}
	poll := time.NewTicker(t.opts.Poll)
	defer poll.Stop()
	resync := time.NewTicker(t.opts.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-notify:
			t.sync(ctx, true)
		case <-resync.C:
			t.sync(ctx, true)
		case <-poll.C:
			t.sync(ctx, false)
		}
	}
}

func (t *Toggles) sync(ctx context.Context, full bool) {
	err := func() error {
		if !full {
			v, err := t.store.Version(ctx)
			if err != nil {
				return err
			}
			t.mu.Lock()
			same := v == t.version
			t.mu.Unlock()
			if same {
				return nil
			}
		}
		return t.Refresh(ctx)
	}()
	if ctx.Err() != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.m.syncErrors.Inc()
		// Once per outage, not once a second: the table in force stays.
		if !t.failing {
			t.log.Error("route overrides cannot be read; the table in force stays", zap.Error(err))
		}
		t.failing = true
		return
	}
	if t.failing {
		t.log.Info("route overrides readable again", zap.Int64("version", t.version))
	}
	t.failing = false
}

// View returns the effective table: every route of the file, its mode in
// force and where that comes from, and the overrides that apply to nothing.
func (t *Toggles) View() RoutesView {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := RoutesView{Version: t.version, Routes: []RouteState{}, Orphans: []Override{}}
	routes := slices.Clone(t.base.routes)
	slices.SortStableFunc(routes, func(a, b *Route) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range append(routes, t.base.fallback) {
		st := RouteState{Name: r.Name, Path: r.Path, Methods: slices.Clone(r.Methods), FileMode: r.Mode, Mode: r.Mode, Source: "file"}
		if st.Methods == nil {
			st.Methods = []string{}
		}
		if o, ok := t.overrides[r.Name]; ok {
			o := o
			st.Mode, st.Source, st.Override = o.Mode, "override", &o
		}
		v.Routes = append(v.Routes, st)
	}
	for _, o := range t.overrides {
		if t.base.byName(o.Route) == nil {
			v.Orphans = append(v.Orphans, o)
		}
	}
	slices.SortFunc(v.Orphans, func(a, b Override) int { return strings.Compare(a.Route, b.Route) })
	return v
}

// Set overrides the mode of the route named id, fleet-wide. id is a
// route's name or its path (every route on that path, whatever its
// methods), or "default". The change is in force on this instance when Set
// returns, and on the others at their next poll or notification.
func (t *Toggles) Set(ctx context.Context, id string, mode Mode, by Actor) ([]ModeChange, error) {
	if !validMode(mode) {
		return nil, fmt.Errorf("%w: %q (want public, legacy, gateway, dual or shadow)", ErrInvalidMode, mode)
	}
	t.mu.Lock()
	names := t.base.resolve(id)
	base := t.base
	t.mu.Unlock()
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRoute, id)
	}
	now := t.opts.Now().UTC().Truncate(time.Microsecond)
	ovs := make([]Override, len(names))
	for i, n := range names {
		ovs[i] = Override{Route: n, Mode: mode, By: by.label(), At: now}
	}
	replaced, version, err := t.store.Put(ctx, ovs)
	if err != nil {
		return nil, err
	}
	prev := byRoute(replaced)
	changes := make([]ModeChange, len(names))
	for i, n := range names {
		changes[i] = ModeChange{Route: n, Old: base.byName(n).Mode, New: mode}
		if p, ok := prev[n]; ok {
			changes[i].Old = p.Mode
		}
	}
	if err := t.recordChanges(ctx, by, "set", version, changes); err != nil {
		t.undo(ctx, names, replaced)
		return nil, err
	}
	t.m.changes.WithLabelValues("set").Add(float64(len(changes)))
	return changes, t.Refresh(ctx)
}

// Unset removes the override of the route(s) id names, which go back to
// the file's mode. Overrides the file no longer has a route for can be
// removed by their name. No override is not an error: nothing changes.
func (t *Toggles) Unset(ctx context.Context, id string, by Actor) ([]ModeChange, error) {
	t.mu.Lock()
	names := t.base.resolve(id)
	for name := range t.overrides {
		if (name == id || routePath(name) == cleanRoutePath(id)) && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	base := t.base
	t.mu.Unlock()
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRoute, id)
	}
	removed, version, err := t.store.Delete(ctx, names)
	if err != nil {
		return nil, err
	}
	return t.removed(ctx, "unset", base, removed, version, by)
}

// Reset removes every override: the one-step rollback to the file's table.
func (t *Toggles) Reset(ctx context.Context, by Actor) ([]ModeChange, error) {
	t.mu.Lock()
	base := t.base
	t.mu.Unlock()
	removed, version, err := t.store.Delete(ctx, nil)
	if err != nil {
		return nil, err
	}
	return t.removed(ctx, "reset", base, removed, version, by)
}

func (t *Toggles) removed(ctx context.Context, op string, base *Table, removed []Override, version int64, by Actor) ([]ModeChange, error) {
	changes := make([]ModeChange, 0, len(removed))
	for _, o := range removed {
		c := ModeChange{Route: o.Route, Old: o.Mode}
		if r := base.byName(o.Route); r != nil {
			c.New = r.Mode
		}
		changes = append(changes, c)
	}
	slices.SortFunc(changes, func(a, b ModeChange) int { return strings.Compare(a.Route, b.Route) })
	if err := t.recordChanges(ctx, by, op, version, changes); err != nil {
		if _, _, uerr := t.store.Put(ctx, removed); uerr != nil {
			t.log.Error("route overrides removed but not audited, and could not be restored", zap.Error(uerr))
		}
		return nil, err
	}
	t.m.changes.WithLabelValues(op).Add(float64(len(changes)))
	return changes, t.Refresh(ctx)
}

// recordChanges audits each change. A change that cannot be audited is
// undone by the caller: no mode flips without its row in the trail.
func (t *Toggles) recordChanges(ctx context.Context, by Actor, op string, version int64, changes []ModeChange) error {
	if t.audit == nil {
		return nil
	}
	for _, c := range changes {
		details := map[string]any{
			"by": by.ID, "route": c.Route, "old": string(c.Old), "new": string(c.New),
			"operation": op, "version": version,
		}
		if by.Email != "" {
			details["by_email"] = by.Email
		}
		if by.RequestID != "" {
			details["request_id"] = by.RequestID
		}
		ev := audit.Event{Action: audit.ActionRouteModeChanged, Resource: "route", ResourceID: c.Route,
			IP: by.IP, UserAgent: by.UserAgent, Details: details}
		if _, err := uuid.Parse(by.ID); err == nil {
			ev.UserID = by.ID
		}
		if err := t.audit.Record(ctx, ev); err != nil {
			return fmt.Errorf("proxy: route change not audited, so not made: %w", err)
		}
	}
	return nil
}

// undo puts back what a Put replaced, after its audit failed.
func (t *Toggles) undo(ctx context.Context, names []string, replaced []Override) {
	prev := byRoute(replaced)
	var added []string
	for _, n := range names {
		if _, ok := prev[n]; !ok {
			added = append(added, n)
		}
	}
	var err error
	if len(added) > 0 {
		_, _, err = t.store.Delete(ctx, added)
	}
	if len(replaced) > 0 && err == nil {
		_, _, err = t.store.Put(ctx, replaced)
	}
	if err != nil {
		t.log.Error("route override made but not audited, and could not be undone", zap.Error(err))
	}
}

func byRoute(ovs []Override) map[string]Override {
	m := make(map[string]Override, len(ovs))
	for _, o := range ovs {
		m[o.Route] = o
	}
	return m
}

// byName returns the route of the table with that name, or nil.
func (t *Table) byName(name string) *Route {
	if name == DefaultRouteName {
		return t.fallback
	}
	for _, r := range t.routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// resolve turns what an operator typed into route names: "default", an
// exact name, or a path naming every route on it.
func (t *Table) resolve(id string) []string {
	id = strings.TrimSpace(id)
	if id == DefaultRouteName {
		return []string{DefaultRouteName}
	}
	if r := t.byName(id); r != nil {
		return []string{r.Name}
	}
	p := cleanRoutePath(id)
	var names []string
	for _, r := range t.routes {
		if r.Path == p {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return names
}

// cleanRoutePath is a path as NewTable keeps it (no trailing slash).
func cleanRoutePath(p string) string {
	p = strings.TrimSpace(p)
	if p != "/" {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// routePath is the path part of a route name ("/api/x GET" → "/api/x").
func routePath(name string) string {
	p, _, _ := strings.Cut(name, " ")
	return cleanRoutePath(p)
}

// withOverrides returns t with the overridden routes' modes replaced, or t
// itself when nothing applies. Untouched routes are shared: tables are
// immutable.
func (t *Table) withOverrides(ovs map[string]Override) *Table {
	if len(ovs) == 0 {
		return t
	}
	nt := *t
	nt.routes = make([]*Route, len(t.routes))
	for i, r := range t.routes {
		nt.routes[i] = overridden(r, ovs)
	}
	nt.fallback = overridden(t.fallback, ovs)
	return &nt
}

func overridden(r *Route, ovs map[string]Override) *Route {
	name := r.Name
	if o, ok := ovs[name]; ok && o.Mode != r.Mode {
		c := *r
		c.Mode = o.Mode
		return &c
	}
	return r
}

// toggleMetrics are the toggles' Prometheus series.
type toggleMetrics struct {
	overrides  prometheus.Gauge
	version    prometheus.Gauge
	changes    *prometheus.CounterVec
	syncErrors prometheus.Counter
}

func newToggleMetrics(reg prometheus.Registerer) *toggleMetrics {
	m := &toggleMetrics{
		overrides: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portero_route_overrides", Help: "Fleet-wide route mode overrides applied by this instance.",
		}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portero_route_overrides_version", Help: "Version of the route overrides this instance applies; equal on every instance once they agree.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_route_mode_changes_total", Help: "Route mode changes made through this instance, by operation (set, unset, reset).",
		}, []string{"operation"}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portero_route_overrides_sync_errors_total", Help: "Failed reads of the route overrides (the table in force stays).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.overrides, m.version, m.changes, m.syncErrors)
	}
	return m
}

func (m *toggleMetrics) set(overrides int, version int64) {
	m.overrides.Set(float64(overrides))
	m.version.Set(float64(version))
}
