package labtest

import "fmt"

// FlanneldFilter is `iptables -S` as flanneld v0.28.8 leaves it for network
// 10.244.0.0/16 (docs/compatibility.md, "iptables").
const FlanneldFilter = `-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N FLANNEL-FWD
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
`

// FlanneldNAT is `iptables -t nat -S` as flanneld v0.28.8 leaves it for
// network 10.244.0.0/16 and node subnet sn (docs/compatibility.md,
// "iptables").
func FlanneldNAT(sn string) string { return flanneldNAT("10.244.0.0/16", sn, "224.0.0.0/4") }

// FlanneldNAT6 is `ip6tables -t nat -S` as flanneld v0.28.10 leaves it
// with EnableIPv6 for IPv6 network network and node IPv6 subnet sn: the
// IPv4 chain with ff00::/8 in place of 224.0.0.0/4 (docs/compatibility.md,
// "IPv6 and dual-stack").
func FlanneldNAT6(network, sn string) string { return flanneldNAT(network, sn, "ff00::/8") }

// flanneldNAT is flanneld's nat table for network, node subnet sn and the
// family's multicast range.
func flanneldNAT(network, sn, multicast string) string {
	return fmt.Sprintf(`-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N FLANNEL-POSTRTG
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s %[2]s -d %[1]s -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s %[1]s -d %[2]s -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s %[1]s -d %[2]s -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s %[1]s ! -d %[3]s -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s %[1]s -d %[1]s -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
`, network, sn, multicast)
}

// FlanneldFilter6 is `ip6tables -S` as flanneld v0.28.10 leaves it with
// EnableIPv6 for IPv6 network network.
func FlanneldFilter6(network string) string {
	return fmt.Sprintf(`-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N FLANNEL-FWD
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s %[1]s -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d %[1]s -m comment --comment "flanneld forward" -j ACCEPT
`, network)
}
