package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoNetAdmin is returned when the process lacks CAP_NET_ADMIN (needed to change iptables).
var ErrNoNetAdmin = errors.New("missing CAP_NET_ADMIN: run as root or grant the NET_ADMIN capability")

// capNetAdmin is CAP_NET_ADMIN's bit in /proc/self/status CapEff.
const capNetAdmin = 12

// Apply installs the rules for IPv4 (and IPv6 when cfg.IPv6), one atomic iptables-restore
// transaction per family. Running it again leaves exactly the same rules.
func Apply(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkNetAdmin(); err != nil {
		return err
	}
	if cfg.NetnsPath != "" {
		if _, err := os.Stat(cfg.NetnsPath); err != nil {
			return fmt.Errorf("network namespace: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mode, err := resolveMode(ctx, cfg)
	if err != nil {
		return err
	}
	fams := []Family{IPv4}
	if cfg.IPv6 {
		fams = append(fams, IPv6)
	}
	for _, fam := range fams {
		save, err := Save(ctx, cfg.NetnsPath, mode, fam)
		if err != nil {
			return err
		}
		input := render(cfg, fam, parseState(save))
		log.Debug("iptables-restore input", "family", fam.String(), "mode", string(mode), "rules", input)
		if _, err := run(ctx, cfg.NetnsPath, binary(mode, fam, "restore"), []string{"--noflush", "-w", "5"}, input); err != nil {
			return fmt.Errorf("apply %s rules: %w", fam, err)
		}
		log.Info("installed weft interception rules", "family", fam.String(), "mode", string(mode),
			"inbound_port", cfg.IncomingProxyPort, "outbound_port", cfg.OutgoingProxyPort, "proxy_uid", cfg.ProxyUID)
	}
	return nil
}

// Save returns `<family>-<mode>-save -t nat` output, run inside netnsPath when set.
func Save(ctx context.Context, netnsPath string, mode Mode, fam Family) (string, error) {
	out, err := run(ctx, netnsPath, binary(mode, fam, "save"), []string{"-t", "nat"}, "")
	if err != nil {
		return "", fmt.Errorf("read %s nat table: %w", fam, err)
	}
	return out, nil
}

// binary names the tool, e.g. iptables-nft-restore or ip6tables-legacy-save.
func binary(mode Mode, fam Family, verb string) string {
	return fmt.Sprintf("%s-%s-%s", fam, mode, verb)
}

// resolveMode returns cfg.Mode, or detects it: the backend that already has rules wins (as
// Kubernetes' iptables-wrapper does), else the one /usr/sbin/iptables points to, else nft.
func resolveMode(ctx context.Context, cfg Config) (Mode, error) {
	if cfg.Mode != ModeAuto {
		return cfg.Mode, nil
	}
	var errs []error
	count := func(m Mode) int {
		out, err := run(ctx, cfg.NetnsPath, binary(m, IPv4, "save"), nil, "")
		if err != nil {
			errs = append(errs, err)
			return -1
		}
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "-A ") {
				n++
			}
		}
		return n
	}
	nft, legacy := count(ModeNFT), count(ModeLegacy)
	switch {
	case nft < 0 && legacy < 0:
		return "", fmt.Errorf("detect iptables mode: neither iptables-nft-save nor iptables-legacy-save runs: %w", errors.Join(errs...))
	case nft > legacy:
		return ModeNFT, nil
	case legacy > nft:
		return ModeLegacy, nil
	}
	return defaultMode(), nil
}

// defaultMode follows the iptables alternative (xtables-legacy-multi vs xtables-nft-multi).
func defaultMode() Mode {
	p, err := exec.LookPath("iptables")
	if err != nil {
		return ModeNFT
	}
	if target, err := filepath.EvalSymlinks(p); err == nil && strings.Contains(filepath.Base(target), "legacy") {
		return ModeLegacy
	}
	return ModeNFT
}

// run executes name with args (inside netnsPath via nsenter when set), feeding stdin.
func run(ctx context.Context, netnsPath, name string, args []string, stdin string) (string, error) {
	if _, err := exec.LookPath(name); err != nil {
		return "", fmt.Errorf("%s not found in PATH (install the iptables package): %w", name, err)
	}
	if netnsPath != "" {
		if _, err := os.Stat(netnsPath); err != nil {
			return "", fmt.Errorf("network namespace %s: %w", netnsPath, err)
		}
		args = append([]string{"--net=" + netnsPath, "--", name}, args...)
		name = "nsenter"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Permission denied") || strings.Contains(msg, "Operation not permitted") {
			return "", fmt.Errorf("%s: %w (%s)", name, ErrNoNetAdmin, msg)
		}
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// checkNetAdmin fails early with ErrNoNetAdmin when the effective capability set lacks NET_ADMIN.
func checkNetAdmin() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // cannot tell; let iptables report
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil
		}
		if caps&(1<<capNetAdmin) == 0 {
			return ErrNoNetAdmin
		}
	}
	return nil
}
