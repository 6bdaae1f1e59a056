package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// invalidationBus carries cache invalidations between instances over Redis
// pub/sub, with acknowledgements. Every instance subscribes to one shared
// channel and to its own ack channel. A broadcast is "<origin> <seq>
// <target>" on the shared channel; PUBLISH answers how many instances
// received it (the sender too), and each of them, having dropped its
// copies, publishes <seq> on the sender's ack channel. The broadcast
// returns when all have answered or the ack timeout passes.
type invalidationBus struct {
	rdb        redis.UniversalClient
	channel    string
	ackChannel string
	id         string
	ackTimeout time.Duration
	onTarget   func(target string)
	onReset    func()

	subscribed  atomic.Bool
	seq         atomic.Uint64
	broadcasts  atomic.Uint64
	ackTimeouts atomic.Uint64

	mu      sync.Mutex
	waiting map[uint64]chan struct{}
	ps      *redis.PubSub // replaced by run, closed by close; under mu

	cancel context.CancelFunc
	done   chan struct{}
}

func startInvalidationBus(rdb redis.UniversalClient, channel string, ackTimeout time.Duration, onTarget func(string), onReset func()) *invalidationBus {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	ctx, cancel := context.WithCancel(context.Background())
	b := &invalidationBus{
		rdb: rdb, channel: channel, ackChannel: channel + ":ack:" + id, id: id,
		ackTimeout: ackTimeout, onTarget: onTarget, onReset: onReset,
		waiting: make(map[uint64]chan struct{}),
		cancel:  cancel, done: make(chan struct{}),
	}
	go b.run(ctx)
	return b
}

// broadcast tells every subscribed instance to drop target and waits for
// their acknowledgements. A Redis error is returned (the caller's change
// may not have reached the others); a silent instance is only counted.
func (b *invalidationBus) broadcast(ctx context.Context, target string) error {
	seq := b.seq.Add(1)
	acks := make(chan struct{}, 256) // one per instance: more than any fleet here
	b.mu.Lock()
	b.waiting[seq] = acks
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiting, seq)
		b.mu.Unlock()
	}()
	b.broadcasts.Add(1)
	n, err := b.rdb.Publish(ctx, b.channel, b.id+" "+strconv.FormatUint(seq, 10)+" "+target).Result()
	if err != nil {
		return fmt.Errorf("sessions: broadcast invalidation: %w", err)
	}
	timer := time.NewTimer(b.ackTimeout)
	defer timer.Stop()
	for got := int64(0); got < n; got++ {
		select {
		case <-acks:
		case <-timer.C:
			b.ackTimeouts.Add(1)
			return nil
		case <-ctx.Done():
			return fmt.Errorf("sessions: broadcast invalidation: %w", ctx.Err())
		}
	}
	return nil
}

// run receives until close: invalidations (dropped, then acknowledged),
// acknowledgements of this instance's broadcasts, and the subscription's
// own comings and goings, which empty the cache.
func (b *invalidationBus) run(ctx context.Context) {
	defer close(b.done)
	ps := b.resubscribe(ctx, nil)
	if ps == nil {
		return
	}
	lastHeard := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, cacheHealthInterval)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(lastHeard) > 3*cacheHealthInterval {
					// Silent, yet connected: a frozen or cut-off Redis.
					// Stop serving copies, and subscribe afresh, so that
					// the confirmation of the new subscription says when
					// messages flow again.
					b.lost()
					if ps = b.resubscribe(ctx, ps); ps == nil {
						return
					}
					lastHeard = time.Now()
					continue
				}
				_ = ps.Ping(ctx)
				continue
			}
			// The connection broke: go-redis redials and resubscribes on
			// the next receive; until then nothing is served from the cache.
			b.lost()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		lastHeard = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Count == 2 {
				// Anything may have changed while we were not listening.
				b.onReset()
				b.subscribed.Store(true)
			}
		case *redis.Message:
			b.handle(ctx, m)
		}
	}
}

// resubscribe closes old (if any) and subscribes anew, unless close has
// been called (then nil).
func (b *invalidationBus) resubscribe(ctx context.Context, old *redis.PubSub) *redis.PubSub {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	if ctx.Err() != nil {
		b.ps = nil
		return nil
	}
	b.ps = b.rdb.Subscribe(ctx, b.channel, b.ackChannel)
	return b.ps
}

// lost marks the subscription down and empties the cache.
func (b *invalidationBus) lost() {
	if b.subscribed.Swap(false) {
		b.onReset()
	}
}

func (b *invalidationBus) handle(ctx context.Context, m *redis.Message) {
	if m.Channel == b.ackChannel {
		seq, err := strconv.ParseUint(m.Payload, 10, 64)
		if err != nil {
			return
		}
		b.mu.Lock()
		ch := b.waiting[seq]
		b.mu.Unlock()
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default: // more acks than receivers counted: nothing waits for them
			}
		}
		return
	}
	origin, rest, ok1 := strings.Cut(m.Payload, " ")
	seq, target, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return
	}
	b.onTarget(target)
	ackCtx, cancel := context.WithTimeout(ctx, b.ackTimeout)
	defer cancel()
	_ = b.rdb.Publish(ackCtx, b.channel+":ack:"+origin, seq).Err()
}

// close stops the receiver: closing the subscription ends its wait.
func (b *invalidationBus) close(ctx context.Context) error {
	b.cancel()
	b.mu.Lock()
	if b.ps != nil {
		_ = b.ps.Close()
	}
	b.mu.Unlock()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
