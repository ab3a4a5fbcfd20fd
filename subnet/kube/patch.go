package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overlayd/overlayd/subnet"
)

// The NetworkUnavailable condition we set, as flanneld does.
const (
	ConditionReason  = "FlannelIsUp"
	conditionMessage = "overlayd (flannel-compatible) is running on this node"
)

// annotationsFor are the annotations that publish attrs; a nil value
// means "must be absent".
func (a Annotations) annotationsFor(attrs subnet.LeaseAttrs) map[string]*string {
	set := func(v string) *string { return &v }
	want := map[string]*string{
		a.SubnetKubeManaged: set("true"),
		a.BackendType:       set(attrs.BackendType),
		a.PrivateIP:         nil,
		a.SameSiteKey:       nil,
	}
	if attrs.PublicIP.IsValid() {
		// IPv6 only: flanneld writes neither (and leaves them as they are).
		want[a.BackendData] = set(compactJSON(attrs.BackendData))
		want[a.PublicIP] = set(attrs.PublicIP.String())
	}
	if attrs.PrivateIP.IsValid() {
		want[a.PrivateIP] = set(attrs.PrivateIP.String())
	}
	if len(attrs.SameSiteKey) > 0 {
		want[a.SameSiteKey] = set(subnet.EncodeSameSiteKey(attrs.SameSiteKey))
	}
	if attrs.PublicIPv6.IsValid() {
		want[a.PublicIPv6] = set(attrs.PublicIPv6.String())
	}
	if len(attrs.BackendV6Data) > 0 {
		want[a.BackendV6Data] = set(compactJSON(attrs.BackendV6Data))
	}
	return want
}

// compactJSON is raw as compact JSON text; "null" when empty.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// annotationChanges is what a patch must change so that have matches
// want: new values, and nil for keys to remove. Empty when in sync.
func annotationChanges(have map[string]string, want map[string]*string) map[string]any {
	changes := map[string]any{}
	for k, v := range want {
		cur, ok := have[k]
		switch {
		case v == nil && ok:
			changes[k] = nil
		case v != nil && (!ok || cur != *v):
			changes[k] = *v
		}
	}
	return changes
}

// ensureAnnotations patches the annotations of n that differ from attrs.
func (m *Manager) ensureAnnotations(ctx context.Context, n *corev1.Node, attrs subnet.LeaseAttrs) error {
	changes := annotationChanges(n.Annotations, m.o.Annotations.annotationsFor(attrs))
	if len(changes) == 0 {
		return nil
	}
	patch := map[string]any{"metadata": map[string]any{"annotations": changes}}
	if err := m.patchStatus(ctx, "annotations", patch); err != nil {
		return err
	}
	m.log.Info("node annotations written", "node", m.o.NodeName, "keys", slices.Sorted(maps.Keys(changes)))
	return nil
}

// conditionInPlace reports whether n has NetworkUnavailable=False with
// our reason.
func conditionInPlace(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return c.Status == corev1.ConditionFalse && c.Reason == ConditionReason
		}
	}
	return false
}

// ensureCondition sets NetworkUnavailable=False (reason FlannelIsUp) when
// it is absent or says otherwise. Conditions merge by type, so the
// kubelet's own conditions are untouched.
func (m *Manager) ensureCondition(ctx context.Context, n *corev1.Node) error {
	if m.o.LeaveNetworkUnavailable || conditionInPlace(n) {
		return nil
	}
	now := metav1.NewTime(m.o.Clock.Now().UTC().Truncate(time.Second))
	cond := map[string]any{
		"type": corev1.NodeNetworkUnavailable, "status": corev1.ConditionFalse,
		"reason": ConditionReason, "message": conditionMessage,
		"lastTransitionTime": now, "lastHeartbeatTime": now,
	}
	patch := map[string]any{"status": map[string]any{"conditions": []any{cond}}}
	if err := m.patchStatus(ctx, "condition", patch); err != nil {
		return err
	}
	m.log.Info("node condition set", "node", m.o.NodeName, "condition", "NetworkUnavailable=False", "reason", ConditionReason)
	return nil
}

// patchStatus sends a strategic merge patch to our node's status
// subresource (the RBAC grants nodes/status patch, not nodes patch).
func (m *Manager) patchStatus(ctx context.Context, what string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("patch node %s %s: %w", m.o.NodeName, what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.o.RequestTimeout)
	defer cancel()
	_, err = m.o.Client.PatchNodeStatus(ctx, m.o.NodeName, types.StrategicMergePatchType, data)
	if err != nil {
		m.metrics.apiErrors.WithLabelValues("patch_" + what).Inc()
		return explainAPIError(err, fmt.Sprintf("patch node %s status (%s)", m.o.NodeName, what))
	}
	m.metrics.patches.WithLabelValues(what).Inc()
	return nil
}
