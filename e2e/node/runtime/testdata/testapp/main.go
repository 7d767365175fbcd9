// Command testapp stands in for a container image in the runtime tests.
//
//	testapp id                 print uid, gid, groups, hostname
//	testapp serve PORT         accept TCP connections and write "hello from HOSTNAME"
//	testapp connect ADDR       connect, print what the server wrote
//	testapp ping IP            one ICMP echo (needs CAP_NET_RAW)
//	testapp cat FILE           print a file
//	testapp write FILE DATA    write a file
//	testapp caps               print CapEff and CapAmb of /proc/self/status
//	testapp sleep              sleep until killed
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no subcommand")
	}
	switch args[0] {
	case "id":
		groups, _ := os.Getgroups()
		h, _ := os.Hostname()
		fmt.Printf("uid=%d gid=%d groups=%v hostname=%s\n", os.Getuid(), os.Getgid(), groups, h)
	case "serve":
		ln, err := net.Listen("tcp", ":"+args[1])
		if err != nil {
			return err
		}
		fmt.Println("listening", ln.Addr())
		h, _ := os.Hostname()
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			fmt.Fprintf(c, "hello from %s\n", h)
			c.Close()
		}
	case "connect":
		c, err := net.DialTimeout("tcp", args[1], 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		fmt.Print(string(b))
	case "ping":
		return ping(args[1])
	case "cat":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		fmt.Print(string(b))
	case "write":
		return os.WriteFile(args[1], []byte(args[2]), 0o644)
	case "caps":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "CapEff") || strings.HasPrefix(l, "CapAmb") {
				fmt.Println(l)
			}
		}
	case "sleep":
		time.Sleep(time.Hour)
	default:
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	return nil
}

func ping(ip string) error {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("weft")}}
	b, _ := msg.Marshal(nil)
	if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(ip)}); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err == nil && m.Type == ipv4.ICMPTypeEchoReply {
			fmt.Println("reply from", peer)
			return nil
		}
	}
}
