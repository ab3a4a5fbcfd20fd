package subnet

import "path"

// maxWarnedKeys bounds the malformed keys RunWatch remembers having
// logged. Churn of malformed keys beyond it costs at most one more line
// per key, never memory.
const maxWarnedKeys = 4096

// warnedKeys is the bounded set of malformed lease keys already logged,
// each with the reason logged. Keys are stored by their last path
// element (the key name), so that a watch event, which names a subnet,
// can drop its entry. Not goroutine-safe: RunWatch's goroutine owns it.
type warnedKeys struct {
	max    int
	reason map[string]string // key name → reason logged
}

func newWarnedKeys(max int) *warnedKeys {
	return &warnedKeys{max: max, reason: map[string]string{}}
}

// add records key with reason; true when this is news to log (the key is
// new, or its reason changed). At the cap the set starts afresh.
func (w *warnedKeys) add(key, reason string) bool {
	name := path.Base(key)
	if old, ok := w.reason[name]; ok {
		if old == reason {
			return false
		}
		w.reason[name] = reason
		return true
	}
	if len(w.reason) >= w.max {
		clear(w.reason)
	}
	w.reason[name] = reason
	return true
}

// forget drops the key name (a subnet's KeyName): it reads well now or
// went away.
func (w *warnedKeys) forget(name string) { delete(w.reason, name) }

// keepOnly drops every key not in a complete list's malformed entries.
func (w *warnedKeys) keepOnly(skipped []SkippedKey) {
	if len(w.reason) == 0 {
		return
	}
	still := make(map[string]bool, len(skipped))
	for _, s := range skipped {
		still[path.Base(s.Key)] = true
	}
	for name := range w.reason {
		if !still[name] {
			delete(w.reason, name)
		}
	}
}

// len is the number of keys remembered.
func (w *warnedKeys) len() int { return len(w.reason) }
