package sessions

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fail-fast defaults for NewRedisClient. go-redis would otherwise wait 5s to
// dial and 3s per read, with retries, while a login or a proxied request
// hangs on a dead Redis; Portero would rather answer 503 at once.
const (
	redisDialTimeout  = 500 * time.Millisecond
	redisReadTimeout  = time.Second
	redisWriteTimeout = time.Second
	redisPoolTimeout  = time.Second
	redisMaxRetries   = 1
)

// NewRedisClient makes a client from a sessions.url:
//
//	redis://[user:pass@]host:port[/db][?opts]          one server
//	rediss://…                                         the same over TLS
//	redis://sentinel:26379/0?master_name=mymaster[&addr=other:26379]
//	                                                   Sentinel (go-redis failover client)
//	redis+cluster://host:port[?addr=host2:port…]       Redis Cluster (also rediss+cluster)
//
// Query options are go-redis's (dial_timeout, read_timeout, max_retries, …).
// Unless the URL sets them, timeouts are short (dial 500ms, read and write
// 1s, one retry) and context deadlines are honoured, so a dead Redis fails
// fast. Errors never repeat the URL, which may hold a password.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL, password included
		}
		return nil, fmt.Errorf("sessions: redis url: %w", err)
	}
	scheme, cluster := strings.CutSuffix(u.Scheme, "+cluster")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fmt.Errorf("sessions: redis url: unsupported scheme %q (want redis, rediss, redis+cluster or rediss+cluster)", u.Scheme)
	}
	u.Scheme = scheme

	switch {
	case cluster:
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("sessions: redis cluster url: %w", err)
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		setDialRetries(&o.DialerRetries, &o.DialerRetryTimeout)
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	case u.Query().Has("master_name"):
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("sessions: redis sentinel url: %w", err)
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		setDialRetries(&o.DialerRetries, &o.DialerRetryTimeout)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	default:
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("sessions: redis url: %w", err)
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		setDialRetries(&o.DialerRetries, &o.DialerRetryTimeout)
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}

// failFast fills the settings the URL left at zero (go-redis's "use the
// default") with Portero's short ones; explicit URL values win.
func failFast(dial, read, write, pool *time.Duration, retries *int) {
	setIfZero(dial, redisDialTimeout)
	setIfZero(read, redisReadTimeout)
	setIfZero(write, redisWriteTimeout)
	setIfZero(pool, redisPoolTimeout)
	if *retries == 0 {
		*retries = redisMaxRetries
	}
}

// setDialRetries stops go-redis retrying a refused dial five times with
// backoff: on a dead Redis that made every session lookup take seconds.
func setDialRetries(retries *int, backoff *time.Duration) {
	if *retries <= 0 {
		*retries = 1
	}
	setIfZero(backoff, 10*time.Millisecond)
}

func setIfZero(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}
