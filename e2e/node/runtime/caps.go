package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// capNames maps Linux capability names (without the CAP_ prefix) to their numbers.
var capNames = map[string]int{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
	"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
	"NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
	"SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
	"SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
	"SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
	"SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

// DefaultCapabilities are the capabilities a root container gets without capabilities.add,
// the same set as Docker/containerd.
var DefaultCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

func capName(c int) string {
	for n, v := range capNames {
		if v == c {
			return "CAP_" + n
		}
	}
	return "cap" + strconv.Itoa(c)
}

// lastCap is the highest capability number the running kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return n
}

func parseCap(name string) (int, error) {
	n := strings.TrimPrefix(strings.ToUpper(name), "CAP_")
	c, ok := capNames[n]
	if !ok {
		return 0, fmt.Errorf("unknown capability %q", name)
	}
	return c, nil
}

// effectiveCaps returns the capability numbers a container keeps, or all=true when privileged.
// Root starts from DefaultCapabilities, other users from nothing; then add and drop apply
// ("ALL" is accepted in both).
func effectiveCaps(sc *corev1.SecurityContext, uid int64) (caps []int, all bool, err error) {
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		return nil, true, nil
	}
	set := map[int]bool{}
	if uid == 0 {
		for _, n := range DefaultCapabilities {
			set[capNames[n]] = true
		}
	}
	if sc != nil && sc.Capabilities != nil {
		for _, a := range sc.Capabilities.Add {
			if strings.EqualFold(string(a), "ALL") {
				for c := 0; c <= lastCap(); c++ {
					set[c] = true
				}
				continue
			}
			c, err := parseCap(string(a))
			if err != nil {
				return nil, false, fmt.Errorf("capabilities.add: %w", err)
			}
			set[c] = true
		}
		for _, d := range sc.Capabilities.Drop {
			if strings.EqualFold(string(d), "ALL") {
				clear(set)
				continue
			}
			c, err := parseCap(string(d))
			if err != nil {
				return nil, false, fmt.Errorf("capabilities.drop: %w", err)
			}
			delete(set, c)
		}
		// Docker semantics: an explicit add survives "drop: [ALL]".
		if containsFold(sc.Capabilities.Drop, "ALL") {
			for _, a := range sc.Capabilities.Add {
				if c, err := parseCap(string(a)); err == nil {
					set[c] = true
				}
			}
		}
	}
	for c := range set {
		if c <= lastCap() {
			caps = append(caps, c)
		}
	}
	return caps, false, nil
}

func containsFold(list []corev1.Capability, s string) bool {
	for _, v := range list {
		if strings.EqualFold(string(v), s) {
			return true
		}
	}
	return false
}
