package main

import (
	"context"
	"testing"
)

func TestReleaseStartMemory(t *testing.T) {
	tests := []struct {
		name      string
		synced    bool
		wantFreed bool
	}{
		{"after the first sync", true, true},
		{"stopped before it", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			synced := make(chan struct{})
			if tt.synced {
				close(synced)
			} else {
				cancel()
			}
			defer cancel()
			freed := false
			if err := releaseStartMemory(ctx, synced, func() { freed = true }); err != nil {
				t.Fatal(err)
			}
			if freed != tt.wantFreed {
				t.Errorf("freed %v, want %v", freed, tt.wantFreed)
			}
		})
	}
}
