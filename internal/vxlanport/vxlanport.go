// Package vxlanport is the UDP ports the VXLAN peer filters of both rule
// modes (iptables, nftables) guard.
package vxlanport

import "fmt"

// Default is the kernel's VXLAN port, flannel's default.
const Default = 8472

// Filtered returns the ports a peer filter guards: port (0: Default), then
// extra. An error names the PeerFilterOptions field and the value that is
// not a UDP port.
func Filtered(port int, extra []int) ([]uint16, error) {
	if port == 0 {
		port = Default
	}
	if !isUDP(port) {
		return nil, fmt.Errorf("PeerFilterOptions.Port %d is not a UDP port", port)
	}
	ports := []uint16{uint16(port)}
	for _, p := range extra {
		if !isUDP(p) {
			return nil, fmt.Errorf("PeerFilterOptions.ExtraPorts %d is not a UDP port", p)
		}
		ports = append(ports, uint16(p))
	}
	return ports, nil
}

func isUDP(port int) bool { return port >= 1 && port <= 65535 }
