package backend

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why turn off TX checksum offload on the VXLAN device: with the
// "tx-checksum-ip-generic" feature on, the kernel leaves the inner TCP/UDP
// checksum to be completed later; when the inner packet is then SNATed
// (kube-proxy's NodePort/ClusterIP masquerade) some kernels emit it with a
// wrong checksum and the receiver drops it. Connections hang until a
// retransmission happens to go through, the well-known 63-second delays
// (flannel issue 1279, Kubernetes issue 88986). Computing the checksum in
// software before encapsulation avoids the bug at a small CPU cost, which is
// what flannel does too.
//
// How: the ethtool ioctl (SIOCETHTOOL), as `ethtool -K flannel.1
// tx-checksum-ip-generic off` does, with no ethtool binary and no cgo. The
// feature's bit index is not a stable ABI, so it is looked up by name in the
// ETH_SS_FEATURES string set (ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS) and then
// cleared with ETHTOOL_SFEATURES. The legacy ETHTOOL_STXCSUM is not used: it
// switches the whole checksum group (ip-generic, ipv4, ipv6, sctp) through
// the kernel's compatibility path and cannot be checked bit for bit.
//
// The ioctl socket is created in the calling thread's network namespace, so
// the caller must run in the device's namespace (the daemon does; tests use
// netnsutil.Do).

const (
	// TxChecksumFeature is the ethtool feature DisableTxChecksumOffload clears.
	TxChecksumFeature = "tx-checksum-ip-generic"

	ethSSFeatures = 4  // ETH_SS_FEATURES in linux/ethtool.h
	ethGStringLen = 32 // ETH_GSTRING_LEN
)

// ethtoolIfreq is struct ifreq carrying a pointer to an ethtool command; its
// padding makes it at least as large as the kernel's struct ifreq.
type ethtoolIfreq struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unix.SizeofPtr]byte
}

// ethtoolSsetInfo is struct ethtool_sset_info asking for one string set.
type ethtoolSsetInfo struct {
	cmd      uint32
	reserved uint32
	ssetMask uint64
	data     [1]uint32
}

// DisableTxChecksumOffload clears tx-checksum-ip-generic on ifname.
func DisableTxChecksumOffload(ifname string) error { return SetTxChecksumOffload(ifname, false) }

// SetTxChecksumOffload turns tx-checksum-ip-generic on or off on ifname. It
// writes nothing when the feature is already as asked (a restart makes no
// change), and fails when the feature does not follow (fixed by the
// driver). Turning it on matters too: the device outlives the daemon, so a
// device an earlier run (or an administrator) left with offload off keeps it
// off until somebody turns it back on.
func SetTxChecksumOffload(ifname string, on bool) error {
	return withEthtoolSocket(ifname, func(e ethtoolConn) error {
		f, err := e.lookupFeature(TxChecksumFeature)
		if err != nil {
			return err
		}
		active, err := e.featureActive(f)
		if err != nil || active == on {
			return err
		}
		if err := e.setFeature(f, on); err != nil {
			return err
		}
		if active, err = e.featureActive(f); err != nil {
			return err
		}
		if active != on {
			return fmt.Errorf("%s: %s is still %s after ETHTOOL_SFEATURES (fixed by the driver?)", ifname, TxChecksumFeature, onOff(active))
		}
		return nil
	})
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// TxChecksumOffloadEnabled reports whether tx-checksum-ip-generic is
// active on ifname (ETHTOOL_GFEATURES).
func TxChecksumOffloadEnabled(ifname string) (bool, error) {
	var on bool
	err := withEthtoolSocket(ifname, func(e ethtoolConn) error {
		f, err := e.lookupFeature(TxChecksumFeature)
		if err != nil {
			return err
		}
		on, err = e.featureActive(f)
		return err
	})
	return on, err
}

// ethtoolConn is an ioctl socket and the interface the commands go to.
type ethtoolConn struct {
	fd     int
	ifname string
}

func withEthtoolSocket(ifname string, fn func(ethtoolConn) error) error {
	if ifname == "" || len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("ethtool: interface name %q is not 1..%d bytes", ifname, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool: open ioctl socket: %w", err)
	}
	defer unix.Close(fd)
	return fn(ethtoolConn{fd: fd, ifname: ifname})
}

// ioctl sends one ethtool command; data points at the command structure,
// whose first field is the command number. It returns the ioctl's
// non-negative result (ETHTOOL_F_* bits for ETHTOOL_SFEATURES).
func (e ethtoolConn) ioctl(what string, data unsafe.Pointer) (uintptr, error) {
	var ifr ethtoolIfreq
	copy(ifr.name[:], e.ifname)
	ifr.data = data
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(e.fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(data)
	if errno != 0 {
		return 0, fmt.Errorf("ethtool %s on %s: %w", what, e.ifname, errno)
	}
	return r, nil
}

// ethtoolFeature locates one feature: its bit index and the number of
// 32-bit words the device's feature bitmap has. ETHTOOL_SFEATURES insists
// on exactly that many words (ETHTOOL_DEV_FEATURE_WORDS), which is the
// feature count rounded up to 32.
type ethtoolFeature struct {
	bit, words int
}

func (f ethtoolFeature) word() int    { return f.bit / 32 }
func (f ethtoolFeature) mask() uint32 { return 1 << (f.bit % 32) }

// lookupFeature finds the named feature in the ETH_SS_FEATURES set.
func (e ethtoolConn) lookupFeature(feature string) (ethtoolFeature, error) {
	n, err := e.featureCount()
	if err != nil {
		return ethtoolFeature{}, err
	}
	names, err := e.featureNames(n)
	if err != nil {
		return ethtoolFeature{}, err
	}
	return findFeature(names, feature, e.ifname)
}

// findFeature returns the position of feature in names.
func findFeature(names []string, feature, ifname string) (ethtoolFeature, error) {
	for i, name := range names {
		if name == feature {
			return ethtoolFeature{bit: i, words: (len(names) + 31) / 32}, nil
		}
	}
	return ethtoolFeature{}, fmt.Errorf("ethtool on %s: feature %q not among the %d the kernel names", ifname, feature, len(names))
}

// featureCount asks for the size of the ETH_SS_FEATURES string set.
func (e ethtoolConn) featureCount() (int, error) {
	info := &ethtoolSsetInfo{cmd: unix.ETHTOOL_GSSET_INFO, ssetMask: 1 << ethSSFeatures}
	if _, err := e.ioctl("GSSET_INFO", unsafe.Pointer(info)); err != nil {
		return 0, err
	}
	if info.ssetMask&(1<<ethSSFeatures) == 0 {
		return 0, fmt.Errorf("ethtool GSSET_INFO on %s: no feature string set", e.ifname)
	}
	return int(info.data[0]), nil
}

// featureNames reads the n feature names (struct ethtool_gstrings: cmd,
// string_set, len, then len names of ETH_GSTRING_LEN bytes).
func (e ethtoolConn) featureNames(n int) ([]string, error) {
	const header = 12
	buf := make([]byte, header+n*ethGStringLen)
	binary.NativeEndian.PutUint32(buf[0:], unix.ETHTOOL_GSTRINGS)
	binary.NativeEndian.PutUint32(buf[4:], ethSSFeatures)
	binary.NativeEndian.PutUint32(buf[8:], uint32(n))
	if _, err := e.ioctl("GSTRINGS", unsafe.Pointer(&buf[0])); err != nil {
		return nil, err
	}
	got := int(binary.NativeEndian.Uint32(buf[8:]))
	return parseGStrings(buf[header:], min(got, n)), nil
}

// parseGStrings splits n NUL-padded ETH_GSTRING_LEN names.
func parseGStrings(data []byte, n int) []string {
	names := make([]string, 0, n)
	for i := 0; i < n && (i+1)*ethGStringLen <= len(data); i++ {
		s := data[i*ethGStringLen : (i+1)*ethGStringLen]
		if j := bytes.IndexByte(s, 0); j >= 0 {
			s = s[:j]
		}
		names = append(names, string(s))
	}
	return names
}

// featureActive reads the feature's bit in the "active" words (struct
// ethtool_gfeatures: cmd, size, then per word the four words available,
// requested, active, never_changed).
func (e ethtoolConn) featureActive(f ethtoolFeature) (bool, error) {
	buf := make([]uint32, 2+4*f.words)
	buf[0], buf[1] = unix.ETHTOOL_GFEATURES, uint32(f.words)
	if _, err := e.ioctl("GFEATURES", unsafe.Pointer(&buf[0])); err != nil {
		return false, err
	}
	active := buf[2+4*f.word()+2]
	return active&f.mask() != 0, nil
}

// setFeature requests the feature on or off and leaves every other feature
// as it is (struct ethtool_sfeatures: cmd, size, then per word the two words
// valid and requested; only our bit is valid).
func (e ethtoolConn) setFeature(f ethtoolFeature, on bool) error {
	buf := make([]uint32, 2+2*f.words)
	buf[0], buf[1] = unix.ETHTOOL_SFEATURES, uint32(f.words)
	buf[2+2*f.word()] = f.mask()
	if on {
		buf[2+2*f.word()+1] = f.mask()
	}
	r, err := e.ioctl("SFEATURES", unsafe.Pointer(&buf[0]))
	if err != nil {
		return err
	}
	if r&unix.ETHTOOL_F_UNSUPPORTED != 0 {
		return fmt.Errorf("ethtool SFEATURES on %s: feature bit %d cannot be changed: %w", e.ifname, f.bit, errors.ErrUnsupported)
	}
	return nil
}
