package main

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/subnet"
)

// etcdWatch stamps the arrival of lease events on a watch of our own
// (directly on etcd, like overlayd's but without the lab's proxy hop), to
// split an event's latency into etcd's part and overlayd's.
type etcdWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	waiters map[etcdWait]chan time.Time
}

type etcdWait struct {
	key string
	put bool
}

func startEtcdWatch(ctx context.Context, cli *clientv3.Client) *etcdWatch {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w := &etcdWatch{cancel: cancel, done: make(chan struct{}), waiters: map[etcdWait]chan time.Time{}}
	ch := cli.Watch(wctx, subnet.SubnetsDir(subnet.DefaultPrefix), clientv3.WithPrefix())
	go func() {
		defer close(w.done)
		for resp := range ch {
			at := time.Now()
			for _, ev := range resp.Events {
				w.deliver(etcdWait{key: string(ev.Kv.Key), put: ev.Type == clientv3.EventTypePut}, at)
			}
		}
	}()
	return w
}

func (w *etcdWatch) deliver(k etcdWait, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.waiters[k]; ok {
		ch <- at
		delete(w.waiters, k)
	}
}

// expect registers interest in the next put (or delete) of key.
func (w *etcdWatch) expect(key string, put bool) <-chan time.Time {
	ch := make(chan time.Time, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiters[etcdWait{key: key, put: put}] = ch
	return ch
}

// stampOf returns the arrival time if it came, or the zero time.
func stampOf(ch <-chan time.Time) time.Time {
	select {
	case at := <-ch:
		return at
	default:
		return time.Time{}
	}
}

// Close stops the watch.
func (w *etcdWatch) Close() {
	w.cancel()
	<-w.done
}
