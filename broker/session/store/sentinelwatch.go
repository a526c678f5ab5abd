package store

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The +switch-master subscription: a sentinel announces a failover the
// moment it is done, sooner than failing commands would reveal it (a
// stalled primary answers nothing until the read timeout).

// switchChannel is where sentinels announce a new primary:
// "<master> <old ip> <old port> <new ip> <new port>".
const switchChannel = "+switch-master"

// watch subscribes to +switch-master on one sentinel after another until
// close, and moves to the primary announced for our master.
func (p *primary) watch() {
	defer close(p.watchDone)
	backoff := subscriptionBackoffMin
	for {
		for _, addr := range p.sentAddr {
			subscribed, err := p.watchOn(addr)
			if p.ctx.Err() != nil {
				return
			}
			if subscribed {
				backoff = subscriptionBackoffMin
			}
			if ok, skipped := p.errs.Allow(time.Now()); ok {
				p.log.Warn("session store: no subscription to the sentinel's failovers; trying the next", "sentinel", addr,
					"error", err, "similar_errors_not_logged", skipped)
			}
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, subscriptionBackoffMax)
	}
}

// watchOn holds one subscription on the sentinel at addr until it fails
// or close, and reports whether it was made. Once subscribed, it asks the
// sentinels for the primary: a switch announced before is not missed.
func (p *primary) watchOn(addr string) (bool, error) {
	var raw net.Conn
	c, err := p.dialSentinel(p.ctx, addr, redis.DialContextFunc(func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := p.netDial(ctx, network, a)
		raw = nc
		return nc, err
	}))
	if err != nil {
		return false, err
	}
	psc := redis.PubSubConn{Conn: c}
	defer psc.Close()
	if err := psc.Subscribe(switchChannel); err != nil {
		return false, err
	}
	defer keepAlive(p.ctx, psc, raw, p.ping)()
	subscribed := false
	for {
		switch m := psc.ReceiveWithTimeout(p.ping + p.read).(type) {
		case redis.Subscription:
			if m.Kind == "subscribe" && !subscribed {
				subscribed = true
				p.refresh()
			}
		case redis.Message:
			if f := strings.Fields(string(m.Data)); len(f) == 5 && f[0] == p.master {
				p.moveTo(net.JoinHostPort(f[3], f[4]))
			}
		case redis.Pong:
		case error:
			if p.ctx.Err() != nil {
				return subscribed, nil
			}
			return subscribed, m
		}
	}
}

// refresh asks the sentinels for the primary now (a switch may have gone
// unannounced while no subscription was up).
func (p *primary) refresh() {
	select {
	case p.lookup <- struct{}{}:
	case <-p.ctx.Done():
		return
	}
	defer func() { <-p.lookup }()
	if addr, err := p.sentinel.MasterAddr(); err == nil {
		p.moveTo(addr)
	}
}
