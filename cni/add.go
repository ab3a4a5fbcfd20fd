package cni

import (
	"context"
	"encoding/json"
	"fmt"
)

// add renders the delegate configuration, saves it for DEL, runs the
// delegate's ADD and passes its result through.
func (p Plugin) add(ctx context.Context, args commandArgs, n NetConf) error {
	env, err := readSubnetEnv(n.SubnetFile)
	if err != nil {
		return newError(CodeInvalidConfig, err)
	}
	d, err := DelegateConfig(n, env)
	if err != nil {
		return newError(CodeInvalidConfig, err)
	}
	conf, err := json.Marshal(d)
	if err != nil {
		return newError(CodeInvalidConfig, fmt.Errorf("encode delegate configuration: %w", err))
	}
	if err := saveConf(n.DataDir, args.containerID, conf); err != nil {
		return newError(CodeIOFailure, err)
	}
	result, err := p.delegate(ctx, "ADD", d["type"].(string), args, conf)
	if err != nil {
		return fmt.Errorf("delegate ADD: %w", err)
	}
	_, err = p.Stdout.Write(result)
	return err
}

// del runs the delegate's DEL with the configuration saved by ADD and
// then removes it. Without a saved configuration there is nothing to
// release: DEL succeeds, as the specification asks. A saved configuration
// that does not decode is removed without calling a delegate.
func (p Plugin) del(ctx context.Context, args commandArgs, n NetConf) error {
	conf, ok, err := loadConf(n.DataDir, args.containerID)
	if err != nil {
		return newError(CodeIOFailure, err)
	}
	if !ok {
		return nil
	}
	var saved struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(conf, &saved); err != nil {
		fmt.Fprintf(p.Stderr, "overlayd cni: saved delegate configuration of %s does not decode (%v); removing it\n", args.containerID, err)
		removeConf(n.DataDir, args.containerID)
		return nil
	}
	if _, err := p.delegate(ctx, "DEL", saved.Type, args, conf); err != nil {
		return fmt.Errorf("delegate DEL: %w", err)
	}
	removeConf(n.DataDir, args.containerID)
	return nil
}

// delegate finds the plugin typ on CNI_PATH and runs cmd with the same
// environment and conf on stdin.
func (p Plugin) delegate(ctx context.Context, cmd, typ string, args commandArgs, conf []byte) ([]byte, error) {
	path, err := findPlugin(typ, args.path)
	if err != nil {
		return nil, err
	}
	return execPlugin(ctx, path, withEnv(p.Env, "CNI_COMMAND", cmd), conf, p.Stderr)
}
