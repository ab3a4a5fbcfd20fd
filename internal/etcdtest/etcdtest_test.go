package etcdtest

import (
	"net/http"
	"testing"
)

func TestStartServesHealth(t *testing.T) {
	s := StartT(t, Options{EnableV2: true})
	resp, err := http.Get(s.Endpoint() + "/v2/keys/")
	if err != nil {
		t.Fatalf("v2 keys: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("v2 keys status %d, want 200", resp.StatusCode)
	}
}
